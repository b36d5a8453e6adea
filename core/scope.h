/*
 * Tensor scopes (scope.c): per-thread stacks of scopes, each listing the tensors it holds
 * (through links in the tensors themselves), and the call level that tells a user's calls from
 * the library's. Private to core/.
 */
#ifndef LAMINA_CORE_SCOPE_H
#define LAMINA_CORE_SCOPE_H

#include "lamina/lamina.h"

/*
 * The call level: the exported wrappers (scope_api.c) run the core's calls one level deeper, so
 * only tensors a call returns at the level where the innermost scope was opened are held. A
 * callback the library runs inside such a call starts one level deeper, where it may open
 * scopes of its own.
 */
void lam__scope_enter(void);
void lam__scope_leave(void);
/* Puts t (a reference just returned to the caller) in the innermost scope when it was opened
 * at this level; t already held by a scope of this thread counts one more reference there. */
void lam__scope_hold(lam_tensor *t);
/* The user retains (before the retain) or releases (before the release) t. */
void lam__scope_note_retain(lam_tensor *t);
void lam__scope_note_release(lam_tensor *t);
/* lam_scope_begin / lam_scope_end, with the function that releases one reference (the core's
 * own release: scope.c sits below tensor.c and does not call it directly). */
lam_status lam__scope_begin(void (*release)(lam_tensor *t));
lam_status lam__scope_end(void);

#endif
