/* An initialised global's value changes: live data cannot be patched. */
int threshold = 200;

int over(int v)
{
    return v > threshold;
}
