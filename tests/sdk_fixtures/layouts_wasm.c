/* wasm32 side of the layout tests: the same initializer and facts over the
 * definitions `wasm-bpf gen header` wrote; prints both for the test to compare. */
#include <stdio.h>
#include "layouts.wasm.h"

#define LT_PTR(v) (v)
#define LT_FPTR(v) (v)
#include "layouts_init.h"

struct lt_all lt_image = LT_ALL_INIT;
const unsigned long long lt_facts[] = {LT_MEMBERS(LT_MEMBER_FACTS) LT_TYPES(LT_TYPE_FACTS)};

int main(void) {
    const unsigned char *p = (const unsigned char *)&lt_image;
    printf("image ");
    for (size_t i = 0; i < sizeof(lt_image); i++)
        printf("%02x", p[i]);
    printf("\nfacts");
    for (size_t i = 0; i < sizeof(lt_facts) / sizeof(lt_facts[0]); i++)
        printf(" %llu", lt_facts[i]);
    printf("\n");
    return 0;
}
