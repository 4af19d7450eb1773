/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Trimmed vmlinux.h for goroscope's goroutine walker.
 *
 * These are the only kernel types the program touches. They were taken from
 *   bpftool btf dump file /sys/kernel/btf/vmlinux format c
 * and cut down to the fields used. Every struct carries preserve_access_index,
 * so field offsets are CO-RE relocated against the running kernel's BTF at
 * load time; the layout below does not have to match any particular kernel.
 */
#ifndef GOROSCOPE_VMLINUX_H
#define GOROSCOPE_VMLINUX_H

typedef signed char __s8;
typedef unsigned char __u8;
typedef short __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;

typedef __s8 s8;
typedef __u8 u8;
typedef __s16 s16;
typedef __u16 u16;
typedef __s32 s32;
typedef __u32 u32;
typedef __s64 s64;
typedef __u64 u64;

typedef int pid_t;

enum bpf_map_type {
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct seq_file;

struct task_struct {
	pid_t pid;
	pid_t tgid;
	u64 start_time;
};

struct bpf_iter_meta {
	struct seq_file *seq;
	u64 session_id;
	u64 seq_num;
};

struct bpf_iter__task {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
};

#pragma clang attribute pop

#endif /* GOROSCOPE_VMLINUX_H */
