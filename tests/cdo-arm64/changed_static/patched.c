/* A static function changes; its global caller does not. */
int limit = 10;

static noinline int clamp(int v)
{
    return v >= limit ? limit - 1 : v;
}

int add_clamped(int a, int b)
{
    return clamp(a + b);
}

int untouched(int a)
{
    return a * 3;
}
