/*
 * The choice of a communicator (by name, $LAMINA_COMM, or the launcher that started the
 * process; lam_comm_choose and what lam_comm_open opens), with messages that say why a
 * communicator is missing, and the built-in "self" communicator of size 1.
 */
#define _GNU_SOURCE /* secure_getenv */
#include "comm_choose.h"
#include "error.h"
#include "registry_comm.h"
#include "start.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The address self hands out as its communicator and its requests: self keeps no state. */
static char self_token;

/* ---- the built-in communicator of one process ---- */

static lam_status self_open(void *user, void **comm) {
    (void)user;
    *comm = &self_token; /* any non-NULL address: self keeps no state */
    return LAM_OK;
}
static lam_status self_close(void *comm) {
    (void)comm;
    return LAM_OK;
}
static int32_t self_rank(const void *comm) {
    (void)comm;
    return 0;
}
static int32_t self_size(const void *comm) {
    (void)comm;
    return 1;
}
static lam_status self_barrier(void *comm) {
    (void)comm;
    return LAM_OK;
}
static lam_status self_broadcast(void *comm, void *data, size_t count, lam_dtype dtype,
                                 int32_t root) {
    (void)comm, (void)data, (void)count, (void)dtype, (void)root;
    return LAM_OK; /* the root's values are already there */
}
static lam_status self_allreduce(void *comm, void *data, size_t count, lam_dtype dtype,
                                 lam_comm_reduce op) {
    (void)comm, (void)data, (void)count, (void)dtype, (void)op;
    return LAM_OK; /* a reduction over one rank is that rank's values */
}
static lam_status self_allgather(void *comm, const void *send, void *recv, size_t count,
                                 lam_dtype dtype) {
    (void)comm;
    memcpy(recv, send, count * lam_dtype_size(dtype));
    return LAM_OK;
}
static lam_status self_allreduce_start(void *comm, void *data, size_t count, lam_dtype dtype,
                                       lam_comm_reduce op, void **request) {
    (void)comm, (void)data, (void)count, (void)dtype, (void)op;
    *request = &self_token; /* complete at once */
    return LAM_OK;
}
static lam_status self_wait(void *comm, void *request) {
    (void)comm, (void)request;
    return LAM_OK;
}
static lam_status self_test(void *comm, void *request, int32_t *done) {
    (void)comm, (void)request;
    *done = 1;
    return LAM_OK;
}

static const lam_comm_desc self_desc = {
    LAM_COMM_DESC_HEADER,
    .name = "self",
    .version = "built-in",
    .doc = "one process: size 1, collectives leave tensors as they are",
    .open = self_open,
    .close = self_close,
    .rank = self_rank,
    .size = self_size,
    .barrier = self_barrier,
    .broadcast = self_broadcast,
    .allreduce = self_allreduce,
    .allgather = self_allgather,
    .allreduce_start = self_allreduce_start,
    .wait = self_wait,
    .test = self_test,
};

/* ---- choice ---- */

/* Evidence that a launcher started this process (mpirun, srun, a PMI launcher); NULL when
 * none. The text (e.g. "OMPI_COMM_WORLD_SIZE=2") goes into buf. */
static const char *launcher_evidence(char *buf, size_t cap) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = secure_getenv(vars[i]);
        if (v != NULL && v[0] != '\0') {
            snprintf(buf, cap, "%s=%s", vars[i], v);
            return buf;
        }
    }
    /* SLURM_NTASKS is set in a whole allocation (a batch script too); only a step that srun
     * started (SLURM_STEP_ID) runs one process per task. */
    const char *nt = secure_getenv("SLURM_NTASKS"), *step = secure_getenv("SLURM_STEP_ID");
    if (nt != NULL && atoi(nt) > 1 && step != NULL && step[0] != '\0') {
        snprintf(buf, cap, "SLURM_NTASKS=%s in srun step %s", nt, step);
        return buf;
    }
    return NULL;
}

/* "mpi, self": the communicators one can open. */
static void loaded_names(lam__strbuf *sb) {
    for (size_t i = 0; i < lam__comm_type_count(); i++) {
        lam__strbuf_printf(sb, "%s, ", lam__comm_type_at(i)->desc.name);
    }
    lam__strbuf_printf(sb, "self");
}

/* Why the plugin of communicator `name` was not loaded: the report row of lamina_comm_<name>.so
 * or of a refused plugin whose message names the communicator (nothing when there is none). */
static void refusal_of(const char *name, lam__strbuf *sb) {
    char file[96], named[96];
    snprintf(file, sizeof file, "lamina_comm_%s.so", name);
    snprintf(named, sizeof named, "communicator '%s'", name);
    size_t n = lam_plugin_report_count();
    for (size_t i = 0; i < n; i++) {
        lam_plugin_record r = LAM_PLUGIN_RECORD_INIT;
        if (lam_plugin_report_get(i, &r) != LAM_OK || r.decision == LAM_PLUGIN_LOADED) {
            continue;
        }
        const char *base = strrchr(r.path, '/');
        if (strcmp(base ? base + 1 : r.path, file) == 0 || strstr(r.message, named) != NULL) {
            lam__strbuf_printf(sb, "; %s was not loaded (%s: %s)", r.path,
                               lam_plugin_reason_string(r.reason), r.message);
            return;
        }
    }
}

static void install_hint(const char *name, lam__strbuf *sb) {
    if (strcmp(name, "mpi") == 0) {
        lam__strbuf_printf(sb, "; lamina_comm_mpi.so is built when MPI is found: install Open MPI "
                               "(Debian: apt-get install openmpi-bin libopenmpi-dev) and rebuild "
                               "Lamina");
    } else {
        lam__strbuf_printf(sb, "; is lamina_comm_%s.so in the plugin path (LAMINA_PLUGIN_PATH)?",
                           name);
    }
}

static lam_status not_loaded(const char *fn, const char *name, const char *source) {
    lam__strbuf sb = {0};
    lam__strbuf_printf(&sb, "communicator '%s'%s is not loaded (available: ", name, source);
    loaded_names(&sb);
    lam__strbuf_printf(&sb, ")");
    refusal_of(name, &sb);
    install_hint(name, &sb);
    lam_status st =
        lam__error(LAM_ERR_NOT_FOUND, "%s: Not found, %s", fn, sb.data ? sb.data : "out of memory");
    lam__strbuf_fini(&sb);
    return st;
}

lam_status lam__comm_choose(const char *fn, const char *name, lam__comm_choice *c) {
    memset(c, 0, sizeof *c);
    const char *source = "";
    char src[160];
    if (name == NULL) {
        const char *env = secure_getenv("LAMINA_COMM");
        if (env != NULL && env[0] != '\0' && strcmp(env, "auto") != 0) {
            name = env;
            snprintf(src, sizeof src, " (LAMINA_COMM=%.64s)", env);
            source = src;
        }
    }
    if (name != NULL) {
        if (strcmp(name, "self") == 0) {
            c->desc = &self_desc;
            snprintf(c->why, sizeof c->why, "asked for by name%s", source);
            return LAM_OK;
        }
        const lam__comm_type *t = lam__comm_type_find(name);
        if (t == NULL) {
            return not_loaded(fn, name, source);
        }
        c->desc = &t->desc;
        c->path = t->plugin->path;
        snprintf(c->why, sizeof c->why, "asked for by name%s", source);
        return LAM_OK;
    }
    for (size_t i = 0; i < lam__comm_type_count(); i++) {
        const lam__comm_type *t = lam__comm_type_at(i);
        char why[256] = "";
        if (t->desc.detect != NULL && t->desc.detect(t->desc.user, why, sizeof why) != 0) {
            why[sizeof why - 1] = '\0';
            c->desc = &t->desc;
            c->path = t->plugin->path;
            snprintf(c->why, sizeof c->why, "detected its launcher (%s)", why);
            return LAM_OK;
        }
    }
    char ev[160];
    if (launcher_evidence(ev, sizeof ev) != NULL) {
        lam__strbuf sb = {0};
        lam__strbuf_printf(&sb,
                           "%s: No communicator, this process was started by a launcher (%s) "
                           "but no loaded communicator serves it (available: ",
                           fn, ev);
        loaded_names(&sb);
        lam__strbuf_printf(&sb, "); running it as a single process would train alone");
        refusal_of("mpi", &sb);
        install_hint("mpi", &sb);
        lam_status st =
            lam__error(LAM_ERR_DEVICE_UNAVAILABLE, "%s", sb.data ? sb.data : "out of memory");
        lam__strbuf_fini(&sb);
        return st;
    }
    c->desc = &self_desc;
    snprintf(c->why, sizeof c->why,
             "one process: no launcher found (none of OMPI_COMM_WORLD_SIZE, PMIX_RANK, "
             "PMI_SIZE, or SLURM_NTASKS in an srun step is set)");
    return LAM_OK;
}

lam_status lam_comm_choose(const char *name, char *chosen, size_t chosen_cap, char *why,
                           size_t why_cap) {
    if (chosen != NULL && chosen_cap > 0) {
        chosen[0] = '\0';
    }
    if (why != NULL && why_cap > 0) {
        why[0] = '\0';
    }
    lam_status st = lam__ensure_started();
    if (st != LAM_OK) {
        return st;
    }
    lam__comm_choice c;
    st = lam__comm_choose("lam_comm_choose", name, &c);
    if (st != LAM_OK) {
        if (why != NULL && why_cap > 0) {
            snprintf(why, why_cap, "%s", lam_last_error());
        }
        return st;
    }
    if (chosen != NULL && chosen_cap > 0) {
        snprintf(chosen, chosen_cap, "%s", c.desc->name);
    }
    if (why != NULL && why_cap > 0) {
        snprintf(why, why_cap, "%s", c.why);
    }
    return LAM_OK;
}
