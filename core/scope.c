/*
 * Tensor scopes (lamina.h, lam_scope_begin): per thread, a stack of scopes; each holds a list
 * of tensors linked through the tensors' own scope fields (so holding one never allocates and
 * cannot fail), with how many references it holds of each and how many of those the user has
 * retained on top. Which calls hand tensors to the user is decided above, in scope_api.c: its
 * wrappers run the core one call level deeper and hold what they return, so the library's own
 * tensors (parameters, tape nodes, layer state) never reach a scope.
 */
#include "scope.h"
#include "error.h"
#include "log.h"
#include "tensor.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct scope {
    uint32_t level; /* the call level it was opened at */
    lam_tensor *head;
} scope;

typedef struct scope_stack {
    uint32_t level; /* the current call level */
    uint32_t n, cap;
    scope *s;
    void (*release)(lam_tensor *t);
} scope_stack;

/* A tensor held by this thread's scopes has scope_owner == &me. */
static _Thread_local scope_stack me;
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
static bool exit_key_ok;

static void at_thread_exit(void *unused);

static void exit_key_create(void) {
    exit_key_ok = pthread_key_create(&exit_key, at_thread_exit) == 0;
}

/* A dlclose()d liblamina must not leave a destructor pointing into unmapped code. */
__attribute__((destructor)) static void exit_key_delete(void) {
    if (exit_key_ok) {
        pthread_key_delete(exit_key);
        exit_key_ok = false;
    }
}

void lam__scope_enter(void) {
    me.level++;
}

void lam__scope_leave(void) {
    me.level--;
}

static bool mine(const lam_tensor *t) {
    return (t->magic == LAM__TENSOR_LIVE || t->magic == LAM__TENSOR_ORPHAN) &&
           t->scope_owner == &me;
}

static void link(scope *s, lam_tensor *t, uint32_t index) {
    t->scope_owner = &me;
    t->scope_index = index;
    t->scope_prev = NULL;
    t->scope_next = s->head;
    if (s->head != NULL) {
        s->head->scope_prev = t;
    }
    s->head = t;
}

static void unlink_from(scope *s, lam_tensor *t) {
    if (t->scope_prev != NULL) {
        t->scope_prev->scope_next = t->scope_next;
    } else {
        s->head = t->scope_next;
    }
    if (t->scope_next != NULL) {
        t->scope_next->scope_prev = t->scope_prev;
    }
    t->scope_owner = NULL;
    t->scope_prev = t->scope_next = NULL;
}

void lam__scope_hold(lam_tensor *t) {
    if (t == NULL || me.n == 0 || me.s[me.n - 1].level != me.level) {
        return;
    }
    if (t->scope_owner == &me) {
        t->scope_refs++;
        return;
    }
    if (t->scope_owner != NULL) {
        return; /* held by another thread's scope: the caller owns this reference */
    }
    t->scope_refs = 1;
    t->scope_own = 0;
    link(&me.s[me.n - 1], t, me.n - 1);
}

/* The user's own call at the level of t's scope (not the library's inside a call). */
static bool user_call(const lam_tensor *t) {
    return mine(t) && me.s[t->scope_index].level == me.level;
}

void lam__scope_note_retain(lam_tensor *t) {
    if (t != NULL && user_call(t)) {
        t->scope_own++;
    }
}

void lam__scope_note_release(lam_tensor *t) {
    if (t == NULL || !user_call(t)) {
        return;
    }
    if (t->scope_own > 0) {
        t->scope_own--;
    } else if (--t->scope_refs == 0) {
        unlink_from(&me.s[t->scope_index], t);
    }
}

lam_tensor *lam_scope_keep(lam_tensor *t) {
    if (t == NULL || !mine(t)) {
        return t;
    }
    uint32_t i = t->scope_index;
    uint32_t refs = t->scope_refs, own = t->scope_own;
    unlink_from(&me.s[i], t);
    if (i > 0 && me.s[i - 1].level == me.s[i].level) {
        link(&me.s[i - 1], t, i - 1);
        t->scope_refs = refs;
        t->scope_own = own;
    } else {
        t->scope_refs = t->scope_own = 0;
    }
    return t;
}

lam_status lam__scope_begin(void (*release)(lam_tensor *t)) {
    if (me.n == me.cap) {
        uint32_t cap = me.cap ? 2 * me.cap : 8;
        scope *s = realloc(me.s, cap * sizeof *s);
        if (s == NULL) {
            return lam__error(LAM_ERR_OUT_OF_MEMORY, "lam_scope_begin: Out of memory");
        }
        me.s = s;
        me.cap = cap;
    }
    if (me.n == 0) {
        pthread_once(&exit_once, exit_key_create);
        if (exit_key_ok) {
            pthread_setspecific(exit_key, &me);
        }
    }
    me.release = release;
    me.s[me.n++] = (scope){.level = me.level, .head = NULL};
    return LAM_OK;
}

/* Releases everything the innermost scope holds and closes it. */
static void end_innermost(void) {
    scope *s = &me.s[me.n - 1];
    me.level++; /* the releases below are the library's, not the user's */
    while (s->head != NULL) {
        lam_tensor *t = s->head;
        uint32_t refs = t->scope_refs;
        unlink_from(s, t);
        t->scope_refs = t->scope_own = 0;
        while (refs-- > 0) {
            me.release(t);
        }
    }
    me.level--;
    if (--me.n == 0) {
        free(me.s);
        me.s = NULL;
        me.cap = 0;
    }
}

lam_status lam__scope_end(void) {
    if (me.n == 0) {
        return lam__error(LAM_ERR_STATE, "lam_scope_end: Bad state, no scope is open");
    }
    if (me.s[me.n - 1].level != me.level) {
        return lam__error(LAM_ERR_STATE,
                          "lam_scope_end: Bad state, the innermost scope was opened outside "
                          "this callback");
    }
    end_innermost();
    return LAM_OK;
}

static void at_thread_exit(void *unused) {
    (void)unused;
    if (me.n > 0) {
        lam__log(LAM_LOG_WARN, "lam_scope_end: %u scope(s) still open at thread exit, ended",
                 (unsigned)me.n);
    }
    while (me.n > 0) {
        me.level = me.s[me.n - 1].level;
        end_innermost();
    }
}
