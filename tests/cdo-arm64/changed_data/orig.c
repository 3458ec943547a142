/* An initialised global's value changes: live data cannot be patched. */
int threshold = 100;

int over(int v)
{
    return v > threshold;
}
