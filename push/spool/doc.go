// Package spool is an on-disk FIFO of opaque records, used by push queues to
// keep data that a backend could not (yet) accept.
//
// # Layout
//
// A spool is a directory of segment files named by the logical offset of
// their first record ("%016x.seg") and one cursor file. Every segment starts
// with an 8-byte magic header; records follow back to back as
//
//	length uint32 LE | crc32c(length bytes || payload) uint32 LE | payload
//
// Logical offsets count record bytes (header + payload) across all segments
// and only grow, so a position is one int64 that survives restarts.
//
// # Consumption and delivery guarantees
//
// Read hands out records from the read position; Ack marks records consumed.
// Records may be acknowledged out of order (several senders): the head moves
// over the contiguous acknowledged prefix, and records acknowledged beyond a
// gap are remembered in the cursor file as a skip set, so after a restart
// they are not read again. Each Ack rewrites the cursor (write to a temporary
// file, fsync, rename).
//
// This is at-least-once delivery with a narrow window: after a clean stop
// (every successful send acknowledged, then Close) a reopened spool resumes
// exactly where it stopped, without re-reading delivered records. After a
// crash, records whose send succeeded but whose Ack had not been written are
// read again: at most the batches that were between "sent" and "acknowledged"
// at the moment of the crash, i.e. at most one batch per concurrent sender.
// Exactly-once across crashes would need the backend to deduplicate (it
// cannot be had from the sender's side alone, since a request can succeed on
// the server while its response is lost).
//
// Appends are written to the kernel at once (one write per record) but not
// fsynced per record: records survive a process crash, not a power loss
// between the write and the next segment roll, Sync or Close.
//
// # Budget
//
// The live bytes (tail minus head) never exceed Options.MaxBytes: an Append
// that would exceed it first evicts the oldest records. Evicting a record
// that was never read counts it as dropped (DropSpoolFull); evicting a record
// that a sender currently holds does not, unless that sender gives it back
// unacknowledged (Rewind). Disk usage is at most MaxBytes plus one segment,
// because space is reclaimed a whole segment at a time.
//
// # Corruption
//
// A record whose header or checksum does not verify is never returned and
// never crashes the reader: the reader scans forward in the same segment for
// the next record that verifies and skips the region in between. The region
// counts as the records it held (DropCorrupt, Stats.CorruptRecords): exact
// when the length prefixes still chain across it, one otherwise (counted in
// Stats.CorruptInexact). Open checks every unconsumed record, so damage is
// counted once and logged (Options.Logger) as one line per damaged file with
// its path and the offset of the first damage; damage that appears later is
// logged when it is read. A segment with a bad magic header keeps its
// records, which carry their own checksums: the header is rewritten. A torn
// record at the end of the newest segment (crash during a write) is
// truncated at Open and counted the same way. An unreadable cursor file
// restarts from the oldest segment (duplicates rather than loss: logged,
// no records counted).
package spool
