//! Fixed-size tables backed by transparent huge pages.

use std::alloc::Layout;
use std::ptr::NonNull;

/// Bytes of a huge page on x86-64 and most aarch64 kernels.
const HUGE_PAGE: usize = 2 << 20;

/// A fixed-length buffer for a large table that is read and written at random (a producer's
/// dense sums, `cooccur`'s word table), aligned to 2 MiB and marked for transparent huge
/// pages before its first touch (`madvise(MADV_HUGEPAGE)`; most kernels only give huge pages
/// to memory that asks for them). With 4 KiB pages, a random access to a table of several MB
/// also misses the TLB: on C1-1GB the prefetch of a word's slot was 23% of the tokenising
/// worker's samples, and 7% in huge pages (the load of a dense sum, a cache miss, stayed
/// about half). Below 2 MiB, or where the kernel declines, it is an ordinary allocation.
pub struct HugeBuf<T> {
    ptr: NonNull<T>,
    len: usize,
    layout: Layout,
}

// SAFETY: `HugeBuf` owns its elements like a `Box<[T]>`.
unsafe impl<T: Send> Send for HugeBuf<T> {}
// SAFETY: as above; shared access only reads.
unsafe impl<T: Sync> Sync for HugeBuf<T> {}

impl<T: Copy> HugeBuf<T> {
    /// `len` copies of `fill`.
    pub fn new(len: usize, fill: T) -> HugeBuf<T> {
        let bytes = len.checked_mul(std::mem::size_of::<T>()).expect("table size overflows");
        if bytes == 0 {
            return HugeBuf {
                ptr: NonNull::dangling(),
                len,
                layout: Layout::new::<()>(),
            };
        }
        let huge = bytes >= HUGE_PAGE;
        let layout = if huge {
            // Whole huge pages: the last one is faulted in whole anyway.
            Layout::from_size_align(
                bytes.next_multiple_of(HUGE_PAGE),
                HUGE_PAGE.max(std::mem::align_of::<T>()),
            )
        } else {
            Layout::array::<T>(len)
        }
        .expect("table layout");
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { std::alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(raw as *mut T) else {
            std::alloc::handle_alloc_error(layout)
        };
        #[cfg(target_os = "linux")]
        if huge {
            // SAFETY: the range is the allocation just made, aligned to a huge page; advice
            // changes no content. A refusal (no THP in this kernel) leaves 4 KiB pages.
            unsafe {
                libc::madvise(raw as *mut libc::c_void, layout.size(), libc::MADV_HUGEPAGE);
            }
        }
        for i in 0..len {
            // SAFETY: `i < len` and the allocation holds `len` elements.
            unsafe { ptr.as_ptr().add(i).write(fill) };
        }
        HugeBuf { ptr, len, layout }
    }
}

impl<T> HugeBuf<T> {
    /// Bytes allocated (whole huge pages when backed by them).
    pub fn allocated_bytes(&self) -> usize {
        self.layout.size()
    }
}

impl<T> std::ops::Deref for HugeBuf<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `len` initialised elements; for an empty table or zero-sized `T`, an aligned
        // dangling pointer, which `from_raw_parts` accepts.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> std::ops::DerefMut for HugeBuf<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, with `&mut self` exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> Drop for HugeBuf<T> {
    fn drop(&mut self) {
        if self.layout.size() != 0 {
            // SAFETY: allocated in `new` with this layout; elements are `Copy` (no drop).
            unsafe { std::alloc::dealloc(self.ptr.as_ptr() as *mut u8, self.layout) };
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for HugeBuf<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HugeBuf")
            .field("len", &self.len)
            .field("bytes", &self.layout.size())
            .finish()
    }
}

impl<T: Copy + Default> Default for HugeBuf<T> {
    fn default() -> HugeBuf<T> {
        HugeBuf::new(0, T::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_its_fill_and_keeps_writes() {
        for len in [0usize, 1, 1000, (3 << 20) / 8 + 5] {
            let mut b = HugeBuf::new(len, 7u64);
            assert_eq!(b.len(), len);
            assert!(b.iter().all(|&x| x == 7));
            if len > 0 {
                b[len - 1] = 9;
                assert_eq!(b[len - 1], 9);
            }
            if len * 8 >= HUGE_PAGE {
                assert_eq!(b.as_ptr() as usize % HUGE_PAGE, 0);
                assert_eq!(b.allocated_bytes() % HUGE_PAGE, 0);
            }
        }
    }
}
