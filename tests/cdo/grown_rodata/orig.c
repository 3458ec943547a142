/* A static const table of digests gains an entry (the shape of a microcode
 * security update): every function of the file that reads it is replaced,
 * and nothing else (no data, no other object) refers to it. The payload
 * carries the grown table as a new object, named so that it cannot bind to
 * the running Xen's table (grown_rodata.c#digests.new), and the replaced
 * readers refer to it; `unrelated` stays the running Xen's. */
struct digest {
    unsigned int id;
    unsigned char sha[12];
};

static const struct digest digests[] = {
    { 0x0a201016, { 0x1a, 0x2b, 0x3c, 0x4d, 0x5e, 0x6f, 0x70, 0x81, 0x92, 0xa3, 0xb4, 0xc5 } },
    { 0x0a201210, { 0x21, 0x32, 0x43, 0x54, 0x65, 0x76, 0x87, 0x98, 0xa9, 0xba, 0xcb, 0xdc } },
};

int digest_known(unsigned int id)
{
    for (unsigned int i = 0; i < sizeof(digests) / sizeof(digests[0]); i++)
        if (digests[i].id == id)
            return 1;
    return 0;
}

const unsigned char *digest_of(unsigned int id)
{
    for (unsigned int i = 0; i < sizeof(digests) / sizeof(digests[0]); i++)
        if (digests[i].id == id)
            return digests[i].sha;
    return 0;
}

/* Its source is unchanged, but it reads the table: it is replaced too, so
 * that it reads the payload's copy. */
unsigned int digest_id_at(unsigned int i)
{
    return i < 2 ? digests[i].id : 0;
}

int unrelated(int x)
{
    return x * 3;
}
