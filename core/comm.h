/*
 * Communicators (comm.c): the lam_comm API of lamina.h. Private to core/.
 */
#ifndef LAMINA_CORE_COMM_H
#define LAMINA_CORE_COMM_H

#include "lamina/lamina.h"

/* At shutdown, before plugins are unloaded: completes every outstanding request and closes
 * every open communicator; their handles stay valid for lam_comm_wait / lam_comm_close. */
void lam__comms_close_all(void);

#endif
