/* A tiny library preloaded after libkonfiscator.so into every child process the
 * tests start (LD_PRELOAD=libkonfiscator.so:libkonfiscator-probe.so). Its
 * constructor runs in every process of the tree (gcc's cc1/as/ld, git's helpers,
 * python's pyenv shims...) and appends one line to $KONFISCATOR_PROBE_FILE:
 *
 *   pid=123 exe=/usr/bin/sort malloc=/path/libkonfiscator.so free=... ...
 *
 * naming, for each malloc API symbol, the object whose definition the process's
 * calls reach. The tests require every line to name libkonfiscator.so: that
 * proves the allocator really served the process, not glibc. One write(2) per
 * line with O_APPEND keeps lines from concurrent processes whole.
 *
 * dlsym(RTLD_DEFAULT, name) is the starting point, with one twist: a non-PIE
 * executable that takes a function's address (cc1 does, for free) carries an
 * undefined symbol whose value is its own PLT stub, and dlsym returns that stub so
 * that function pointers compare equal everywhere. The stub only jumps on to the
 * real definition, so in that case the probe reports the first loaded object
 * after the executable that defines the symbol: the one the dynamic linker bound
 * the stub to. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const names[] = {
    "malloc", "free", "calloc", "realloc", "reallocarray", "memalign",
    "posix_memalign", "aligned_alloc", "valloc", "pvalloc", "malloc_usable_size",
};

/* The executable's .dynsym, read from /proc/self/exe. */
static const unsigned char *exe_image;
static size_t exe_size;

/* Whether the executable's dynamic symbol `name` is undefined (a reference, perhaps
 * with a canonical PLT address) rather than a definition of its own. */
static int exe_symbol_is_undefined(const char *name)
{
    if (exe_image == NULL || exe_size < sizeof(ElfW(Ehdr)))
        return 0;
    const ElfW(Ehdr) *header = (const ElfW(Ehdr) *)exe_image;
    if (header->e_shoff == 0 || header->e_shoff + (size_t)header->e_shnum * sizeof(ElfW(Shdr)) > exe_size)
        return 0;
    const ElfW(Shdr) *sections = (const ElfW(Shdr) *)(exe_image + header->e_shoff);
    for (int i = 0; i < header->e_shnum; i++) {
        if (sections[i].sh_type != SHT_DYNSYM || sections[i].sh_link >= header->e_shnum)
            continue;
        const ElfW(Shdr) *strings = &sections[sections[i].sh_link];
        if (sections[i].sh_offset + sections[i].sh_size > exe_size || strings->sh_offset + strings->sh_size > exe_size)
            return 0;
        const ElfW(Sym) *symbols = (const ElfW(Sym) *)(exe_image + sections[i].sh_offset);
        size_t count = sections[i].sh_size / sizeof(ElfW(Sym));
        const char *text = (const char *)(exe_image + strings->sh_offset);
        for (size_t s = 0; s < count; s++) {
            if (symbols[s].st_name < strings->sh_size && strcmp(text + symbols[s].st_name, name) == 0)
                return symbols[s].st_shndx == SHN_UNDEF;
        }
    }
    return 0;
}

/* The link map of the object holding `address`, or NULL. */
static struct link_map *object_of(void *address, Dl_info *info)
{
    struct link_map *map = NULL;
    if (address == NULL || dladdr1(address, info, (void **)&map, RTLD_DL_LINKMAP) == 0)
        return NULL;
    return map;
}

/* The path of the object whose definition of `name` calls reach, or "?". */
static const char *resolve(const char *name)
{
    Dl_info info;
    struct link_map *map = object_of(dlsym(RTLD_DEFAULT, name), &info);
    if (map == NULL || info.dli_fname == NULL)
        return "?";
    /* The executable is the first object of the link map chain. */
    if (map->l_prev != NULL || !exe_symbol_is_undefined(name))
        return info.dli_fname;

    /* A canonical PLT stub: the first object after the executable that defines it. */
    for (struct link_map *next = map->l_next; next != NULL; next = next->l_next) {
        if (next->l_name == NULL || next->l_name[0] == '\0')
            continue;
        void *handle = dlopen(next->l_name, RTLD_LAZY | RTLD_NOLOAD);
        if (handle == NULL)
            continue;
        Dl_info where;
        struct link_map *definer = object_of(dlsym(handle, name), &where);
        dlclose(handle);
        if (definer == next)
            return next->l_name;
    }
    return "?";
}

__attribute__((constructor)) static void probe(void)
{
    const char *file = getenv("KONFISCATOR_PROBE_FILE");
    if (file == NULL || *file == '\0')
        return;

    char exe[1024];
    ssize_t exe_len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[exe_len > 0 ? exe_len : 0] = '\0';

    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    struct stat status;
    if (fd >= 0 && fstat(fd, &status) == 0 && status.st_size > 0) {
        void *image = mmap(NULL, (size_t)status.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (image != MAP_FAILED) {
            exe_image = image;
            exe_size = (size_t)status.st_size;
        }
    }
    if (fd >= 0)
        close(fd);

    char line[8192];
    size_t len = 0;
    int n = snprintf(line, sizeof line, "pid=%d exe=%s", (int)getpid(), exe);
    len = n > 0 ? (size_t)n : 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && len < sizeof line; i++) {
        n = snprintf(line + len, sizeof line - len, " %s=%s", names[i], resolve(names[i]));
        if (n > 0)
            len += (size_t)n;
    }
    if (len >= sizeof line)
        len = sizeof line - 1;
    line[len++] = '\n';

    if (exe_image != NULL)
        munmap((void *)exe_image, exe_size);
    exe_image = NULL;

    int out = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (out < 0)
        return;
    ssize_t written = write(out, line, len);
    (void)written;
    close(out);
}
