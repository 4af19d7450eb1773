/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The few libbpf bpf_helpers.h macros and helper declarations the goroutine
 * walker needs, copied from libbpf (bpf_helpers.h, bpf_helper_defs.h) so the
 * object builds with nothing but clang.
 */
#ifndef GOROSCOPE_HELPERS_H
#define GOROSCOPE_HELPERS_H

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
#define __always_inline inline __attribute__((always_inline))
#define barrier_var(var) asm volatile("" : "+r"(var))

#define BPF_ANY 0
#define BPF_RB_NO_WAKEUP 1
#define BPF_RB_FORCE_WAKEUP 2

/* Helper IDs from include/uapi/linux/bpf.h (___BPF_FUNC_MAPPER). */
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;
static long (*bpf_map_delete_elem)(void *map, const void *key) = (void *)3;
static __u64 (*bpf_ktime_get_ns)(void) = (void *)5;
static long (*bpf_ringbuf_output)(void *ringbuf, void *data, __u64 size, __u64 flags) = (void *)130;
static long (*bpf_loop)(__u32 nr_loops, void *callback_fn, void *callback_ctx, __u64 flags) = (void *)181;
static long (*bpf_copy_from_user_task)(void *dst, __u32 size, const void *user_ptr,
				       struct task_struct *tsk, __u64 flags) = (void *)191;

#endif /* GOROSCOPE_HELPERS_H */
