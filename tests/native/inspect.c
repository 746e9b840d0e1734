/* glibc's inspection calls in a program run under the allocator: each must
 * answer from its heap. Checks what a C caller can check, prints the figures,
 * and exits 1 with a line naming the first check that failed. malloc_stats()
 * writes its report on stderr, which the test reads. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond) do { if (!(cond)) { printf("failed: %s\n", #cond); return 1; } } while (0)

int main(void)
{
    enum { count = 1000 };
    static void *blocks[count];
    for (int i = 0; i < count; i++) {
        blocks[i] = malloc(2000);
        CHECK(blocks[i] != NULL);
    }
    void *large = malloc(4 << 20);
    CHECK(large != NULL);

    struct mallinfo2 a = mallinfo2();
    struct mallinfo b = mallinfo(); /* before printf, whose first call allocates stdout's buffer */
    CHECK((size_t)b.arena == a.arena && (size_t)b.uordblks == a.uordblks);
    printf("arena %zu ordblks %zu uordblks %zu fordblks %zu hblkhd %zu usmblks %zu keepcost %zu\n",
           a.arena, a.ordblks, a.uordblks, a.fordblks, a.hblkhd, a.usmblks, a.keepcost);
    CHECK(a.arena == a.uordblks + a.fordblks);
    CHECK(a.uordblks >= count * 2000);
    CHECK(a.hblkhd >= 4 << 20);
    CHECK(a.usmblks >= count * 2000 + (4 << 20));


    for (int i = 0; i < count; i++)
        free(blocks[i]);
    free(large);
    struct mallinfo2 c = mallinfo2();
    /* The frees show at once, but for the few blocks the thread holds back for its next
     * mallocs of the size (docs/heap.md, "Held blocks": eight of a size class). */
    CHECK(c.uordblks < a.uordblks - count * 2000 + (32 << 10));
    CHECK(malloc_trim(0) == 1);
    struct mallinfo2 d = mallinfo2();
    printf("trimmed: arena %zu -> %zu\n", c.arena, d.arena);
    CHECK(d.arena < c.arena && d.keepcost == 0);

    char *xml = NULL;
    size_t length = 0;
    FILE *memory = open_memstream(&xml, &length);
    CHECK(memory != NULL);
    CHECK(malloc_info(0, memory) == 0);
    fclose(memory);
    CHECK(strncmp(xml, "<malloc version=\"1\">\n<heap nr=\"0\">\n", 35) == 0);
    CHECK(strstr(xml, "<total type=\"rest\" count=\"") != NULL && strstr(xml, "</malloc>\n") != NULL);
    free(xml);

    CHECK(mallopt(M_MMAP_THRESHOLD, 256 * 1024) == 1);
    CHECK(mallopt(M_TRIM_THRESHOLD, 1 << 20) == 1);
    CHECK(mallopt(4242, 1) == 0);

    fflush(stdout);
    malloc_stats();
    printf("ok\n");
    return 0;
}
