/*
 * Process-wide settings of the Abseil library underneath the gRPC C core,
 * applied once before the first grpc_init().
 */
#ifndef CJ_RPC_ABSL_H
#define CJ_RPC_ABSL_H

/* Outcome of cj_rpc_absl_disable_deadlock_detection(). */
enum cj_rpc_absl_detection {
    CJ_RPC_ABSL_DETECTION_OFF = 1,      /* switched off by this process */
    CJ_RPC_ABSL_DETECTION_UNCHANGED = 2 /* setter not found, so left as is */
};

/*
 * Switches off Abseil's Mutex deadlock detection for the whole process on
 * the first call. Later calls only return the first outcome. Call it before
 * grpc_init(), from any thread.
 */
enum cj_rpc_absl_detection cj_rpc_absl_disable_deadlock_detection(void);

#endif
