//! The guest's allocator (wasm32, cargo feature `arena`, on by default): a bump allocator over a
//! region of the module's own initial memory, falling back to the standard allocator when full.
//!
//! Why: a waPC host like supsvc-webhook runs every evaluation in a fresh instance, so nothing
//! allocated outlives the request and freeing buys nothing. The standard wasm allocator takes
//! its memory with `memory.grow`, and a fresh instance has almost none spare, so every
//! evaluation grew memory, which costs the host two `mprotect` calls (grow, then hide the grown
//! pages again for the next instance) and dlmalloc's bookkeeping. Allocating from a zeroed
//! region already inside the initial memory costs neither: about 10 µs of a 35 µs evaluation of
//! the registry guard (BENCHMARKS.md). A policy that sets its own `#[global_allocator]` turns
//! the feature off (`default-features = false`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, UnsafeCell};

/// Bytes served from the region before falling back to the standard allocator. The region is
/// zeroed `.bss`, not part of the module, but it is part of the initial linear memory, whose
/// page-table entries a pooling host such as supsvc-webhook walks after every evaluation to find
/// what to reset: 256 KiB holds a guard's evaluation of a review far larger than a usual Pod's
/// (the 3.4 KB review of the webhook's bench takes a few KiB) while keeping that walk short
/// (it was 1 MiB: BENCHMARKS.md, issue 19).
pub const ARENA_BYTES: usize = 256 << 10;

#[repr(C, align(16))]
struct Region<const BYTES: usize>(UnsafeCell<[u8; BYTES]>);

/// A bump allocator: allocations move a mark forward; freeing or growing the most recent
/// allocation moves it back or grows it in place, any other free is a no-op.
pub struct Arena<const BYTES: usize = ARENA_BYTES> {
    region: Region<BYTES>,
    used: Cell<usize>,
}

// The arena is shared (a `static`) only as the global allocator of a wasm32 guest.
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
compile_error!(
    "supsvc-policy-sdk's arena allocator assumes a single-threaded guest: build without the \
     atomics target feature, or disable the SDK's `arena` feature"
);

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
// SAFETY: a wasm32 guest built without the atomics target feature (refused above) runs one
// thread, so the arena's cells are never accessed concurrently.
unsafe impl<const BYTES: usize> Sync for Arena<BYTES> {}

impl<const BYTES: usize> Arena<BYTES> {
    /// An empty arena of `BYTES` bytes (a `const fn`, for a `static` global allocator).
    pub const fn new() -> Self {
        Arena {
            region: Region(UnsafeCell::new([0; BYTES])),
            used: Cell::new(0),
        }
    }

    fn base(&self) -> *mut u8 {
        self.region.0.get().cast()
    }

    /// The offset of `ptr` in the region, if it is one of the arena's.
    fn offset_of(&self, ptr: *mut u8) -> Option<usize> {
        let offset = ptr.addr().checked_sub(self.base().addr())?;
        (offset < BYTES).then_some(offset)
    }

    /// Where an allocation of `layout` would start and end, if it fits.
    fn place(&self, layout: Layout) -> Option<(usize, usize)> {
        let base = self.base().addr();
        // `align` is a power of two, so the region's start rounds up to it exactly.
        let start = (base + self.used.get()).checked_next_multiple_of(layout.align())? - base;
        let end = start.checked_add(layout.size())?;
        (end <= BYTES).then_some((start, end))
    }
}

impl<const BYTES: usize> Default for Arena<BYTES> {
    fn default() -> Self {
        Self::new()
    }
}

#[allow(unsafe_code)]
// SAFETY: every pointer handed out is either `System`'s or the start of a range of the region
// that is inside it, aligned as asked, and disjoint from every other live allocation: ranges are
// carved past the mark, and the mark only moves back over the most recent allocation when that
// allocation is freed or resized in place. Pointers are told apart by address, so each is given
// back to the allocator that made it.
unsafe impl<const BYTES: usize> GlobalAlloc for Arena<BYTES> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.place(layout) {
            Some((start, end)) => {
                self.used.set(end);
                self.base().wrapping_add(start)
            }
            // SAFETY: the caller's contract for `layout` is `System`'s too.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match self.offset_of(ptr) {
            Some(offset) => {
                if offset + layout.size() == self.used.get() {
                    self.used.set(offset);
                }
            }
            // SAFETY: not the arena's, so `System` allocated it, with this layout.
            None => unsafe { System.dealloc(ptr, layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if let Some(offset) = self.offset_of(ptr)
            && offset + layout.size() == self.used.get()
            && offset + new_size <= BYTES
        {
            // The most recent allocation: grow or shrink it where it is.
            self.used.set(offset + new_size);
            return ptr;
        }
        // SAFETY: `new_size` is valid for `layout.align()` (the caller's contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: `new_layout` has a non-zero size, as `new_size` is (the caller's contract).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both are live allocations of at least the copied length, and distinct:
            // `new` was carved past the mark or made by `System`.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use super::*;

    const BYTES: usize = 4096;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn allocations_are_aligned_disjoint_and_the_last_one_is_reused() {
        let arena = Arena::<BYTES>::new();
        // SAFETY (all blocks of this test): layouts have non-zero sizes, pointers are freed and
        // resized with the layout they were allocated with.
        unsafe {
            let a = arena.alloc(layout(3, 1));
            let b = arena.alloc(layout(8, 8));
            assert_eq!(b.addr() % 8, 0);
            assert!(b.addr() >= a.addr() + 3, "disjoint");
            assert_eq!(arena.offset_of(a), Some(0));
            // Freeing the most recent allocation gives its room back; an older one, nothing.
            arena.dealloc(b, layout(8, 8));
            let c = arena.alloc(layout(8, 8));
            assert_eq!(c, b);
            arena.dealloc(a, layout(3, 1));
            assert_ne!(arena.alloc(layout(1, 1)), a);
        }
    }

    #[test]
    fn the_most_recent_allocation_grows_in_place_others_move_with_their_bytes() {
        let arena = Arena::<BYTES>::new();
        unsafe {
            let a = arena.alloc(layout(4, 1));
            a.copy_from(b"abcd".as_ptr(), 4);
            let grown = arena.realloc(a, layout(4, 1), 64);
            assert_eq!(grown, a, "in place");
            let b = arena.alloc(layout(4, 1));
            let moved = arena.realloc(grown, layout(64, 1), 128);
            assert_ne!(moved, grown);
            assert!(moved.addr() > b.addr());
            assert_eq!(std::slice::from_raw_parts(moved, 4), b"abcd");
        }
    }

    #[test]
    fn a_full_arena_falls_back_to_the_system_allocator() {
        let arena = Arena::<BYTES>::new();
        unsafe {
            let most = arena.alloc(layout(BYTES - 16, 1));
            assert_eq!(arena.offset_of(most), Some(0));
            let big = arena.alloc(layout(64, 8));
            assert!(!big.is_null());
            assert_eq!(arena.offset_of(big), None, "from System");
            big.write_bytes(7, 64);
            // Growing an arena allocation past the end moves it to System, contents kept.
            let small = arena.alloc(layout(8, 1));
            small.write_bytes(9, 8);
            let moved = arena.realloc(small, layout(8, 1), 4096);
            assert_eq!(arena.offset_of(moved), None);
            assert_eq!(std::slice::from_raw_parts(moved, 8), &[9; 8]);
            arena.dealloc(moved, layout(4096, 1));
            arena.dealloc(big, layout(64, 8));
        }
    }
}
