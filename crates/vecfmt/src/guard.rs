//! Maps that survive their file being truncated (FORMAT.md §7).
//!
//! Reading a page of a shared file map that lies past the end of the file raises SIGBUS,
//! which kills the process. That happens when another process truncates a file that we
//! have mapped. vecfmt's own writers never do that (they respect the readers' shared lock and
//! never shrink a file), but other programs may. [`GuardedMap`] turns that signal into an
//! error:
//! - every guarded map is registered in a fixed table that a process-wide SIGBUS handler
//!   reads (installed on first use; lock-free, async-signal-safe);
//! - when a SIGBUS hits an address inside a registered map, the handler maps anonymous zero
//!   pages over the map from the faulting page to its end (`MAP_FIXED`), records that the map
//!   was cut short, and returns: the faulting read completes and reads zeros;
//! - readers check [`GuardedMap::is_cut`] (one atomic load) after reading, and report the
//!   file as changed or truncated while being read ([`GuardedMap::check`]).
//!
//! A SIGBUS at any other address goes to the handler that was installed before (Rust's own,
//! or the default action, which ends the process as it would have anyway).

use std::io;
use std::ops::Deref;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

use memmap2::Mmap;

use crate::error::{io_err, Result};

/// Maps that can be guarded at once; a map past this many is unguarded (a truncation then
/// ends the process with SIGBUS, as it would without the guard).
const SLOTS: usize = 4096;

const FREE: usize = 0;
const CLAIMED: usize = 1;
const LIVE: usize = 2;

struct Slot {
    state: AtomicUsize,
    start: AtomicUsize,
    len: AtomicUsize,
    cut: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    state: AtomicUsize::new(FREE),
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    cut: AtomicBool::new(false),
};

static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];
/// One past the highest slot ever claimed: the handler scans no further.
static HIGH: AtomicUsize = AtomicUsize::new(0);
static PAGE: AtomicUsize = AtomicUsize::new(4096);
static INSTALL: Once = Once::new();
/// The SIGBUS action before ours, to chain to.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();
/// Whether our handler is in place.
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// SIGBUS faults absorbed so far.
static ABSORBED: AtomicUsize = AtomicUsize::new(0);

/// How many SIGBUS faults in guarded maps this process has absorbed.
pub fn absorbed() -> usize {
    ABSORBED.load(Ordering::Relaxed)
}

/// A read-only file map whose truncation under it is an error, not a crash. Derefs to the
/// mapped bytes.
#[derive(Debug)]
pub struct GuardedMap {
    map: Mmap,
    slot: Option<usize>,
}

impl GuardedMap {
    /// Guards `map`: from now on a SIGBUS inside it is absorbed and recorded.
    pub fn new(map: Mmap) -> GuardedMap {
        install();
        let slot = if map.is_empty() || !INSTALLED.load(Ordering::Acquire) {
            None
        } else {
            register(map.as_ptr() as usize, map.len())
        };
        GuardedMap { map, slot }
    }

    /// Whether part of the file disappeared under the map (it was truncated or replaced in
    /// place): bytes read from the map since may be zeros.
    #[inline]
    pub fn is_cut(&self) -> bool {
        self.slot.is_some_and(|i| TABLE[i].cut.load(Ordering::Acquire))
    }

    /// An error naming `path` if the map was cut short.
    #[inline]
    pub fn check(&self, path: &Path) -> Result<()> {
        if self.is_cut() {
            return Err(truncated(path));
        }
        Ok(())
    }

    /// Whether the map is guarded (false when the table was full or the handler could not be
    /// installed).
    pub fn is_guarded(&self) -> bool {
        self.slot.is_some()
    }

    /// The underlying map (for `madvise`).
    pub fn mmap(&self) -> &Mmap {
        &self.map
    }
}

/// The error for a file that changed or was truncated while being read.
pub fn truncated(path: &Path) -> crate::Error {
    io_err(path, "read")(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the file was changed or truncated by another process while being read; reopen it",
    ))
}

impl Deref for GuardedMap {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        &self.map
    }
}

impl Drop for GuardedMap {
    fn drop(&mut self) {
        // Unregistered before the map itself is unmapped (fields drop after this).
        if let Some(i) = self.slot {
            TABLE[i].state.store(FREE, Ordering::Release);
        }
    }
}

fn register(start: usize, len: usize) -> Option<usize> {
    for (i, s) in TABLE.iter().enumerate() {
        if s.state
            .compare_exchange(FREE, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            s.start.store(start, Ordering::Relaxed);
            s.len.store(len, Ordering::Relaxed);
            s.cut.store(false, Ordering::Relaxed);
            HIGH.fetch_max(i + 1, Ordering::AcqRel);
            s.state.store(LIVE, Ordering::Release);
            return Some(i);
        }
    }
    None
}

fn install() {
    INSTALL.call_once(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if page > 0 {
            PAGE.store(page as usize, Ordering::Relaxed);
        }
        // SAFETY: a zeroed sigaction is a valid value to fill in; the handler has the
        // SA_SIGINFO signature; `old` receives the previous action.
        unsafe {
            let mut new: libc::sigaction = std::mem::zeroed();
            new.sa_sigaction = on_sigbus as *const () as usize;
            new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut new.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, &new, &mut old) == 0 {
                let _ = PREVIOUS.set(old);
                INSTALLED.store(true, Ordering::Release);
            }
        }
    });
}

/// The SIGBUS handler. Only async-signal-safe work: atomic loads and stores, `mmap`,
/// `sigaction`, and the previous handler.
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE.load(Ordering::Relaxed);
    let high = HIGH.load(Ordering::Acquire);
    for s in &TABLE[..high] {
        if s.state.load(Ordering::Acquire) != LIVE {
            continue;
        }
        let (start, len) = (s.start.load(Ordering::Relaxed), s.len.load(Ordering::Relaxed));
        if addr < start || addr >= start + len {
            continue;
        }
        let from = addr & !(page - 1);
        let end = (start + len).div_ceil(page) * page;
        // SAFETY: [from, end) lies within a live map that its GuardedMap owns (registered
        // maps are page-aligned and unregistered before they are unmapped); replacing its
        // pages with private zero pages keeps every reference into it valid.
        let r = unsafe {
            libc::mmap(
                from as *mut libc::c_void,
                end - from,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if r != libc::MAP_FAILED {
            s.cut.store(true, Ordering::Release);
            ABSORBED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        break;
    }
    // Not ours: what would have happened without us.
    match PREVIOUS.get() {
        Some(prev) if prev.sa_sigaction != libc::SIG_DFL && prev.sa_sigaction != libc::SIG_IGN => {
            if prev.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: an SA_SIGINFO handler has this signature.
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(prev.sa_sigaction) };
                f(sig, info, ctx);
            } else {
                // SAFETY: a plain handler has this signature.
                let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(prev.sa_sigaction) };
                f(sig);
            }
        }
        _ => {
            // The default action: reset it and return; the faulting access runs again and
            // the signal ends the process.
            // SAFETY: restoring the default disposition.
            unsafe {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigemptyset(&mut dfl.sa_mask);
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
    }
}
