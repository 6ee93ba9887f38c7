/* resolve_loaded_lib: find a loaded shared library's file through /proc/self/maps. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elf_path.h"

/*
 * /proc/<pid>/maps shows the file a soname symlink points to, not the soname. Accept:
 *   - the name itself ("libc.so.6" on glibc >= 2.34);
 *   - a longer version of it ("libbpf.so.1" -> "libbpf.so.1.1.2");
 *   - "<stem>-<anything>.so" where <stem> is lib_name up to ".so" (glibc < 2.34:
 *     "libc.so.6" -> "libc-2.31.so").
 */
static int lib_name_matches(const char *base, const char *lib_name)
{
    const char *so = strstr(lib_name, ".so");
    size_t name_len = strlen(lib_name);
    size_t stem_len;

    if (strcmp(base, lib_name) == 0)
        return 1;
    if (!so)
        return 0;
    if (strncmp(base, lib_name, name_len) == 0 && base[name_len] == '.')
        return 1;
    stem_len = (size_t)(so - lib_name);
    return strncmp(base, lib_name, stem_len) == 0 && base[stem_len] == '-' &&
           strstr(base + stem_len, ".so") != NULL;
}

int resolve_loaded_lib(const char *lib_name, char *out, size_t len)
{
    char line[PATH_MAX + 256];
    char found[PATH_MAX];
    char real[PATH_MAX];
    const char *path;
    FILE *maps;
    int ret = -ENOENT;

    if (!lib_name || !*lib_name || !out || len == 0)
        return -EINVAL;

    maps = fopen("/proc/self/maps", "re");
    if (!maps)
        return -errno;

    /* Line: "start-end perms offset dev inode      /path/name"; the path is the last field
     * and may contain spaces, so take everything from its first '/'. */
    while (fgets(line, sizeof(line), maps)) {
        const char *base;
        char *nl;

        path = strchr(line, '/');
        if (!path || path == line || path[-1] != ' ')
            continue;
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        /* A library replaced on disk (package upgrade) is no longer what new processes load. */
        if (strstr(path, " (deleted)"))
            continue;
        base = strrchr(path, '/') + 1;
        if (lib_name_matches(base, lib_name)) {
            snprintf(found, sizeof(found), "%s", path);
            ret = 0;
            break;
        }
    }
    fclose(maps);
    if (ret)
        return ret;

    /* maps already shows a resolved path; realpath only normalises bind-mount oddities. */
    path = realpath(found, real) ? real : found;
    if (strlen(path) + 1 > len)
        return -ENAMETOOLONG;
    memcpy(out, path, strlen(path) + 1);
    return 0;
}
