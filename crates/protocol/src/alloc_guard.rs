//! A global allocator that keeps a lying length field from aborting the process.
//!
//! The `kafka-protocol` decoder reserves `Vec` capacity from array lengths read off the wire
//! (DEPENDENCIES.md, trap 1): a 30-byte Metadata request claiming 2^31 topics asks for ~150 GB
//! before the decoder notices the bytes are missing. The system allocator refuses and Rust
//! aborts the whole broker — no panic to catch.
//!
//! `GuardedAllocator` serves every allocation of at least [`HUGE_ALLOCATION_BYTES`] from an
//! anonymous `MAP_NORESERVE` mapping instead. The kernel hands out address space without
//! committing memory, so the reservation succeeds, the decoder fails on the missing bytes
//! after touching a page or two, and the mapping is unmapped: the request gets an error, the
//! process keeps running. Genuine large allocations behave as before (pages are committed on
//! first touch).
//!
//! The binaries install it with `#[global_allocator]`; library code never depends on it.

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations at or above this size come from a reserved-but-uncommitted mapping. Larger
/// than any buffer the broker itself makes (frames are capped at 100 MiB by default).
pub const HUGE_ALLOCATION_BYTES: usize = 512 << 20;
const PAGE_BYTES: usize = 4096;

pub struct GuardedAllocator;

fn is_huge(layout: &Layout) -> bool {
    layout.size() >= HUGE_ALLOCATION_BYTES && layout.align() <= PAGE_BYTES
}

unsafe fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping with no address hint has no preconditions.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p as *mut u8
    }
}

// SAFETY: every huge block comes from `map` (page aligned, zeroed, at least `size` bytes) and
// goes back through `munmap` with the same size; everything else is the system allocator's.
unsafe impl GlobalAlloc for GuardedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            unsafe { map(layout.size()) }
        } else {
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            unsafe { map(layout.size()) }
        } else {
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_huge(&layout) {
            unsafe { libc::munmap(ptr as *mut libc::c_void, layout.size()) };
        } else {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` with `layout.align()` is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !is_huge(&layout) && !is_huge(&new_layout) {
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let new_ptr = unsafe { self.alloc(new_layout) };
        if !new_ptr.is_null() {
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new_ptr
    }
}
