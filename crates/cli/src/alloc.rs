//! Allocator tuning. burn-flex frees and re-allocates buffers of tens of megabytes on every
//! training step; by default mimalloc returns freed memory to the OS after 1 s and the
//! kernel then zeroes fresh pages on the next step (27% of a `mini` step was
//! `clear_page_erms`). Keeping freed memory (purge delay -1) makes the step 1.3× faster
//! (docs/benchmarks.md); memory use stays at the step's peak, which it reaches anyway.

/// mimalloc v3's `mi_option_purge_delay` (index 15 in `mi_option_e`, mimalloc.h of the pinned
/// libmimalloc-sys 0.1.49; the test below checks the index by its default value).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Never give freed memory back to the OS (mimalloc `purge_delay = -1`).
pub fn keep_freed_memory() {
    #[allow(unsafe_code)]
    // SAFETY: mi_option_set only stores an integer in mimalloc's option table; the option
    // exists in the pinned version and may be changed at any time.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_15_is_purge_delay() {
        #[allow(unsafe_code)]
        // SAFETY: reading and writing an option value.
        let (before, after) = unsafe {
            let before = libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY);
            keep_freed_memory();
            (
                before,
                libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY),
            )
        };
        // v3's documented default purge delay is 1000 ms.
        assert_eq!((before, after), (1000, -1));
    }
}
