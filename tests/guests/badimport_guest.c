/* Imports something the host does not provide: IMPORT_MODULE.IMPORT_NAME. */
#include <stdio.h>
__attribute__((import_module(IMPORT_MODULE), import_name(IMPORT_NAME))) int mystery(int);
int main(void)
{
    printf("started=1\n");
    return mystery(1);
}
