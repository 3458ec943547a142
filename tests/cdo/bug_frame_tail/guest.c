/* The rest of the fake hypervisor for this case: where switch_to() jumps. */
void resume_guest(void) __attribute__((__noreturn__));
void resume_guest(void)
{
    for ( ;; )
        printk("guest\n");
}
