/* The live-patch function table as Xen 4.17 declares it (version 2). */
#ifndef PUBLIC_SYSCTL_H
#define PUBLIC_SYSCTL_H

#define LIVEPATCH_PAYLOAD_VERSION 2

struct livepatch_expectation {
    unsigned char enabled : 1;
    unsigned char len : 5;
    unsigned char rsv : 2;
    unsigned char data[31];
};

struct livepatch_func {
    const char *name;
    void *new_addr;
    void *old_addr;
    unsigned int new_size;
    unsigned int old_size;
    unsigned char version;
    unsigned char opaque[31];
    unsigned char applied;
    unsigned char _pad[7];
    struct livepatch_expectation expect;
};

#endif
