/* The same initializer and the same layout questions on both targets. The BPF side
 * defines LT_PTR/LT_FPTR as pointer casts; the wasm32 side, where pointers are
 * uint64_t, as plain numbers. */
#define LT_ALL_INIT {                                                               \
    .c = 'x', .l = -1234567890123L, .ul = 0xfeedface12345678UL,                      \
    .str = LT_PTR(0x1122334455667788ULL), .fn = LT_FPTR(0x99ULL),                    \
    .in = {1, 2, 3}, .arr = {{4, 5, 6}, {7, 8, 9}}, .num = {.i = 0x01020304},        \
    .u = 0x0a0b0c0d, .anon_named = {11, 12},                                         \
    .bits = {.a = 5, .b = 300, .c = -3, .d = 0xABCDEF1234ULL, .e = 2,                \
             .f = -123456789, .g = LT_BLUE, .h = 1, .i = 17},                        \
    .tight = {'t', 0x11223344, -5}, .col = LT_BLUE, .sm = LT_S_B, .bg = LT_BIG_B,    \
    .t = 0xdeadbeef, .lt = -77,                                                      \
    .pairs = {{{1, 2}, {3, 4}, {5, 6}}, {{7, 8}, {9, 10}, {11, 12}}},                \
    .matrix = {[0][0][0] = 1, [1][2][3] = 42},                                       \
    .name = "hello world!", .flag = 1, .last = 0x0102030405060708ULL, .d = 3.25,     \
    .ptr_in = LT_PTR(0x55ULL),                                                       \
}

/* offsetof and sizeof of named members, nested ones included. */
#define LT_MEMBERS(F)                                                                \
    F(struct lt_all, c) F(struct lt_all, l) F(struct lt_all, ul) F(struct lt_all, str) \
    F(struct lt_all, fn) F(struct lt_all, in) F(struct lt_all, in.b)                 \
    F(struct lt_all, in.c) F(struct lt_all, arr) F(struct lt_all, arr[1].c)          \
    F(struct lt_all, num) F(struct lt_all, num.raw) F(struct lt_all, u)              \
    F(struct lt_all, ub) F(struct lt_all, anon_named) F(struct lt_all, anon_named.sy) \
    F(struct lt_all, bits) F(struct lt_all, tight) F(struct lt_all, tight.i)         \
    F(struct lt_all, tight.l) F(struct lt_all, col) F(struct lt_all, sm)             \
    F(struct lt_all, bg) F(struct lt_all, t) F(struct lt_all, lt)                    \
    F(struct lt_all, pairs) F(struct lt_all, pairs[1][2].y) F(struct lt_all, matrix) \
    F(struct lt_all, name) F(struct lt_all, flag) F(struct lt_all, last)             \
    F(struct lt_all, d) F(struct lt_all, ptr_in) F(struct lt_all, tail)              \
    F(struct lt_inner, b) F(struct lt_inner, c) F(lt_pair_t, y) F(union lt_num, raw) \
    F(struct lt_tight, i) F(struct lt_tight, l)

#define LT_TYPES(F)                                                                  \
    F(struct lt_all) F(struct lt_inner) F(lt_pair_t) F(union lt_num)                 \
    F(struct lt_bits) F(struct lt_tight)

#define LT_MEMBER_FACTS(T, m) offsetof(T, m), sizeof(((T *)0)->m),
#define LT_TYPE_FACTS(T) sizeof(T),
