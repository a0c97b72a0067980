//! A large stack for the recursive work on parse trees (libpg_query's parser and protobuf writer,
//! prost's decoder, the linter's walks), so that SQL nested a few hundred levels deep is parsed,
//! or refused as too deep, and never overflows a thread's stack. One region per thread is
//! reserved on first use and reused: the pages are committed only as they are touched, and
//! switching onto it costs a function call, where a fresh `mmap` per parse cost 13 µs.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

/// The size of the region (virtual; a guard page at its low end).
const SIZE: usize = 256 << 20;
const PAGE: usize = 4096;

struct Region {
    base: *mut u8,
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: `base` was returned by mmap for SIZE bytes and is unmapped once, when the
        // thread that owns it exits (nothing runs on it then).
        unsafe {
            libc::munmap(self.base.cast(), SIZE);
        }
    }
}

thread_local! {
    static REGION: RefCell<Option<Region>> = const { RefCell::new(None) };
    /// This thread is running on its region already (a nested call stays where it is).
    static ON_IT: Cell<bool> = const { Cell::new(false) };
}

fn reserve() -> Option<Region> {
    // SAFETY: an anonymous private mapping with no address hint; the result is checked.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: the first page of the mapping we own; PROT_NONE makes it the guard page.
    if unsafe { libc::mprotect(base, PAGE, libc::PROT_NONE) } != 0 {
        // SAFETY: unmapping what we just mapped.
        unsafe { libc::munmap(base, SIZE) };
        return None;
    }
    Some(Region { base: base.cast() })
}

/// Run `f` on this thread's large stack.
pub fn run<R>(f: impl FnOnce() -> R) -> R {
    if ON_IT.get() {
        return f();
    }
    let base = REGION.with(|r| {
        let mut r = r.borrow_mut();
        if r.is_none() {
            *r = reserve();
        }
        r.as_ref().map(|r| r.base)
    });
    let Some(base) = base else { return stacker::grow(SIZE, f) };
    ON_IT.set(true);
    // SAFETY: `base` is page-aligned and SIZE a multiple of the page size; the region stays
    // mapped for the thread's life and only this call uses it (ON_IT); the callback does not
    // unwind (a panic is caught and resumed on the original stack).
    let result = unsafe { psm::on_stack(base, SIZE, || catch_unwind(AssertUnwindSafe(f))) };
    ON_IT.set(false);
    match result {
        Ok(r) => r,
        Err(panic) => resume_unwind(panic),
    }
}
