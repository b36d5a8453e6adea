/*
 * A layer plugin whose descriptor strings die when its entry returns: the names, version, doc
 * and attribute texts are built on the heap, registered, then scribbled over and freed; the
 * attribute docs live in the entry's stack frame. The host copies what it keeps at
 * registration (plugin.h), so it must report and use the right names regardless.
 */
#define _POSIX_C_SOURCE 200809L
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>

static char *heap_text(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL) {
        memcpy(d, s, n);
    }
    return d;
}

/* Overwrites and frees, so a host that kept the pointer reads garbage even without ASan. */
static void kill_text(char *s) {
    if (s != NULL) {
        memset(s, 'X', strlen(s));
        free(s);
    }
}

LAM_PLUGIN_ENTRY {
    fx_host = host;
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    char gain_doc[64], mode_doc[64]; /* dead once the entry returns */
    snprintf(gain_doc, sizeof gain_doc, "%s", "gain applied to the input");
    snprintf(mode_doc, sizeof mode_doc, "%s", "how to compute it");
    char *texts[9] = {heap_text("HeapStrings"), heap_text("heapstr"),
                      heap_text("3.1.4"),       heap_text("a layer whose strings die"),
                      heap_text("gain"),        heap_text("2.5"),
                      heap_text("mode"),        heap_text("fast"),
                      heap_text("fast|slow")};
    for (int i = 0; i < 9; i++) {
        if (texts[i] == NULL) {
            for (int j = 0; j < 9; j++) {
                free(texts[j]);
            }
            return host->set_error(LAM_ERR_OUT_OF_MEMORY, "heap_strings: Out of memory");
        }
    }
    lam_attr_desc *attrs = calloc(2, sizeof *attrs);
    const lam_attr_desc **attr_ptrs = calloc(2, sizeof *attr_ptrs);
    if (attrs == NULL || attr_ptrs == NULL) {
        free(attrs);
        free(attr_ptrs);
        for (int j = 0; j < 9; j++) {
            free(texts[j]);
        }
        return host->set_error(LAM_ERR_OUT_OF_MEMORY, "heap_strings: Out of memory");
    }
    attrs[0].struct_size = (uint32_t)sizeof attrs[0];
    attrs[1].struct_size = (uint32_t)sizeof attrs[1];
    attr_ptrs[0] = &attrs[0];
    attr_ptrs[1] = &attrs[1];
    attrs[0].name = texts[4];
    attrs[0].type = LAM_ATTR_FLOAT;
    attrs[0].default_value = texts[5];
    attrs[0].doc = gain_doc;
    attrs[1].name = texts[6];
    attrs[1].type = LAM_ATTR_ENUM;
    attrs[1].default_value = texts[7];
    attrs[1].choices = texts[8];
    attrs[1].doc = mode_doc;
    lam_layer_desc d = fx_layer(texts[0]);
    d.prefix = texts[1];
    d.version = texts[2];
    d.doc = texts[3];
    d.n_attrs = 2;
    d.attrs = attr_ptrs;
    st = host->register_layer(plugin, &d);
    memset(attrs, 0xA5, 2 * sizeof *attrs);
    free(attrs);
    memset(attr_ptrs, 0xA5, 2 * sizeof *attr_ptrs);
    free(attr_ptrs);
    for (int i = 0; i < 9; i++) {
        kill_text(texts[i]);
    }
    memset(gain_doc, 'Y', sizeof gain_doc - 1);
    memset(mode_doc, 'Y', sizeof mode_doc - 1);
    return st;
}
