/* The demo program (the seed's driver): 50 ints, each in a malloc of its own,
 * printed, then each freed. Under `konfiscator run` its figures show exactly
 * that: 50 mallocs of 4 bytes and 50 frees, plus one malloc that stays in use
 * at exit: stdio's output buffer (4 KiB when stdout is a pipe or a file, 1 KiB
 * for a terminal), which glibc allocates on the first printf and never frees. */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    enum { count = 50 };
    int *values[count];
    for (int i = 0; i < count; i++) {
        values[i] = malloc(sizeof *values[i]);
        if (values[i] == NULL) {
            perror("malloc");
            return 1;
        }
        *values[i] = i;
    }
    for (int i = 0; i < count; i++)
        printf("index %d: value %d\n", i, *values[i]);
    for (int i = 0; i < count; i++)
        free(values[i]);
    return 0;
}
