/* The seed's driver program: malloc an array of 50 ints, print each, free it. */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    const int count = 50;
    int *values = malloc(count * sizeof *values);
    if (values == NULL) {
        perror("malloc");
        return 1;
    }
    for (int i = 0; i < count; i++)
        values[i] = i;
    for (int i = 0; i < count; i++)
        printf("index %d: value %d\n", i, values[i]);
    free(values);
    return 0;
}
