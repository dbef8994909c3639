/* BPF side of the layout tests: the types of layouts.h with their natural BPF
 * layout, an initialized instance and the layout facts, read from the ELF. */
#include <stddef.h>
#include "layouts.h"

#define LT_PTR(v) ((void *)(v))
#define LT_FPTR(v) ((void (*)(int))(v))
#include "layouts_init.h"

struct lt_all lt_image = LT_ALL_INIT;
const volatile unsigned long long lt_facts[] = {
    LT_MEMBERS(LT_MEMBER_FACTS) LT_TYPES(LT_TYPE_FACTS)
};
