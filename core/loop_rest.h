/*
 * loop_rest: the HA loop's side of the REST requests that need only the
 * DCS -- GET /cluster (a fresh read, as Patroni forces one), GET /history
 * and GET /config when no cluster view is cached, PATCH and PUT /config,
 * DELETE /switchover -- and the glue of POST /restart: a restart scheduled
 * through the REST API as ha.h's fact, and the answer to an immediate one
 * when its task ends (Patroni's ha.restart() texts).
 *
 * Threads: the HA loop's only.
 */
#ifndef PGKEEL_LOOP_REST_H
#define PGKEEL_LOOP_REST_H

#include <stdbool.h>
#include <stdint.h>

struct pgkeel_cluster;
struct pgkeel_dcsc;
struct pgkeel_ha_scheduled_restart;
struct pgkeel_pgm_result;
struct pgkeel_rest_req;
struct pgkeel_rest_restart;

/*
 * Read the cluster and answer req on it (rest.h's pgkeel_rest_answer_dcs),
 * writing through the client's backend within deadline_ms.  Returns the
 * view read (a new reference, for the loop's cache; NULL when the read
 * failed).  *changed: the configuration may have changed (Patroni wakes the
 * HA loop up).
 */
struct pgkeel_cluster *pgkeel_loop_rest_dcs(struct pgkeel_dcsc *dcs, int64_t deadline_ms,
                                            struct pgkeel_rest_req *req, bool *changed);

/* The scheduled restart as the decision's fact (h points into r). */
void pgkeel_loop_rest_restart_fact(const struct pgkeel_rest_restart *r,
                                   struct pgkeel_ha_scheduled_restart *h);

/* The same for the filters of an immediate POST /restart (h points into req). */
void pgkeel_loop_rest_request_fact(const struct pgkeel_rest_req *req,
                                   struct pgkeel_ha_scheduled_restart *h);

/*
 * The restart task req started ended: 200 "restarted successfully", 503
 * "postgres is still starting" (its start timeout passed) or 503 "restart
 * failed".  req is answered (invalid afterwards).
 */
void pgkeel_loop_rest_restart_done(struct pgkeel_rest_req *req,
                                   const struct pgkeel_pgm_result *res);

#endif
