/* Types whose BPF layout the SDK must reproduce on wasm32: every kind of member the
 * layout emitter handles. Shared by the BPF side of the tests (compiled as is). */
#ifndef LAYOUTS_H
#define LAYOUTS_H

typedef unsigned int lt_u32_t;
typedef long lt_long_t;

enum lt_color { LT_RED = 1, LT_GREEN = 2, LT_BLUE = -7 };
enum __attribute__((packed)) lt_small { LT_S_A = 1, LT_S_B = 200 };
enum lt_big { LT_BIG_A = 1, LT_BIG_B = 0x123456789aLL };

struct lt_inner {
    char a;
    long b;
    short c;
};

typedef struct {
    int x;
    unsigned short y;
} lt_pair_t;

union lt_num {
    int i;
    float f;
    char raw[6];
};

struct lt_bits {
    unsigned a : 3;
    unsigned b : 9;
    int c : 20;
    unsigned long long d : 40;
    unsigned char e : 2;
    long f : 33;
    enum lt_color g : 4;
    _Bool h : 1;
    unsigned : 0;
    unsigned short i : 5;
};

struct __attribute__((packed)) lt_tight {
    char c;
    int i;
    long l;
};

struct lt_all {
    char c;
    long l;
    unsigned long ul;
    const char *str;
    void (*fn)(int);
    struct lt_inner in;
    struct lt_inner arr[2];
    union lt_num num;
    union {
        int u;
        char ub[3];
    };
    struct {
        short sx;
        long sy;
    } anon_named;
    struct lt_bits bits;
    struct lt_tight tight;
    enum lt_color col;
    enum lt_small sm;
    enum lt_big bg;
    lt_u32_t t;
    lt_long_t lt;
    lt_pair_t pairs[2][3];
    int matrix[2][3][4];
    char name[13];
    _Bool flag;
    unsigned long long last;
    double d;
    struct lt_inner *ptr_in;
    long tail[0];
};

#endif
