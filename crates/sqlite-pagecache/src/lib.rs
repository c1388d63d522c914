//! SQLite's default page cache, minus a full scan of the cache after page swaps.
//!
//! When SQLite rebalances B-tree pages it may swap two pages' numbers, passing one through a
//! temporary number: that of the pending-byte page (524,289 with 2 KiB pages), which never
//! holds data. The default cache (`pcache1`) keeps the largest page number it has seen, and
//! at the end of every transaction drops the pages beyond the end of the database; when that
//! largest number lies far beyond the end, it walks every cached page to find them. After a
//! swap it always does, so each commit that rebalanced an index walked the whole cache: with
//! waygate's 16 MiB writer cache, about an eighth of the writer thread's time under load.
//!
//! The wrapper passes every call to the default cache and keeps its own largest page number,
//! leaving out the pending-byte page. A truncation above that number has nothing to drop, and
//! is not passed on.
//!
//! The same step, which must also come before SQLite starts, gives each connection a larger
//! lookaside (SQLite's per-connection pool for small, short-lived allocations: cursors,
//! statement registers). The default 48 KiB ran out under the writer's statements, and each
//! allocation past it went to `malloc`: 200 slots of 1,200 bytes took about 4,000
//! instructions off the writer's ~85,000 a send (`bench/instructions`), for 240 KiB a
//! connection.

use std::ffi::{c_int, c_uint, c_void};
use std::mem::MaybeUninit;
use std::sync::OnceLock;

use rusqlite::ffi;

/// SQLite's lock byte offset (`PENDING_BYTE`); its page never holds data.
const PENDING_BYTE: c_uint = 0x4000_0000;

/// The default cache's methods, as SQLite gave them before the wrapper took their place.
struct DefaultMethods(ffi::sqlite3_pcache_methods2);
// SAFETY: function pointers, and an argument that SQLite itself passes from any thread.
unsafe impl Send for DefaultMethods {}
unsafe impl Sync for DefaultMethods {}

static DEFAULT: OnceLock<DefaultMethods> = OnceLock::new();

/// Each connection's lookaside: the size of a slot (SQLite's default) and how many.
const LOOKASIDE_SLOT_BYTES: c_int = 1200;
const LOOKASIDE_SLOTS: c_int = 200;

/// Puts the wrapper and the larger lookaside in place for every connection the process opens
/// after it. SQLite takes both only before it is initialised, that is before the first
/// connection opens; returns whether the wrapper is in place (false, changing nothing, when
/// it came too late).
pub fn install() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    // SAFETY: sqlite3_config refuses (SQLITE_MISUSE) once SQLite is initialised; before, it
    // copies the methods it is given.
    *INSTALLED.get_or_init(|| unsafe { install_once() })
}

unsafe fn install_once() -> bool {
    let mut current = MaybeUninit::<ffi::sqlite3_pcache_methods2>::zeroed();
    // SAFETY: GETPCACHE2 fills the struct it points to.
    if unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_GETPCACHE2, current.as_mut_ptr()) }
        != ffi::SQLITE_OK
    {
        return false;
    }
    // SAFETY: filled by SQLite above.
    let current = unsafe { current.assume_init() };
    if current.xCreate.is_none() || DEFAULT.set(DefaultMethods(current)).is_err() {
        return false;
    }
    let wrapper = ffi::sqlite3_pcache_methods2 {
        iVersion: 2,
        pArg: std::ptr::null_mut(),
        xInit: Some(init),
        xShutdown: Some(shutdown),
        xCreate: Some(create),
        xCachesize: Some(cachesize),
        xPagecount: Some(pagecount),
        xFetch: Some(fetch),
        xUnpin: Some(unpin),
        xRekey: Some(rekey),
        xTruncate: Some(truncate),
        xDestroy: Some(destroy),
        xShrink: Some(shrink),
    };
    // SAFETY: SQLite copies the struct; LOOKASIDE takes two ints.
    unsafe {
        ffi::sqlite3_config(
            ffi::SQLITE_CONFIG_PCACHE2,
            &wrapper as *const ffi::sqlite3_pcache_methods2,
        ) == ffi::SQLITE_OK
            && ffi::sqlite3_config(
                ffi::SQLITE_CONFIG_LOOKASIDE,
                LOOKASIDE_SLOT_BYTES,
                LOOKASIDE_SLOTS,
            ) == ffi::SQLITE_OK
    }
}

fn default() -> &'static ffi::sqlite3_pcache_methods2 {
    &DEFAULT
        .get()
        .expect("the wrapper is only reachable once installed")
        .0
}

/// One connection's cache. SQLite uses a cache from one thread at a time.
struct Cache {
    inner: *mut ffi::sqlite3_pcache,
    /// No page with a larger number is in the cache (the pending-byte page aside).
    largest: c_uint,
    pending_page: c_uint,
}

impl Cache {
    fn saw(&mut self, key: c_uint) {
        if key != self.pending_page && key > self.largest {
            self.largest = key;
        }
    }
}

/// SAFETY (for every caller): `p` is a pointer `create` returned and `destroy` has not freed.
unsafe fn cache<'a>(p: *mut ffi::sqlite3_pcache) -> &'a mut Cache {
    unsafe { &mut *p.cast::<Cache>() }
}

macro_rules! call {
    ($method:ident($($arg:expr),*)) => {
        // SAFETY: SQLite's default cache, called as SQLite would have called it.
        unsafe { (default().$method.expect(concat!("SQLite's cache has ", stringify!($method))))($($arg),*) }
    };
}

unsafe extern "C" fn init(_: *mut c_void) -> c_int {
    call!(xInit(default().pArg))
}

unsafe extern "C" fn shutdown(_: *mut c_void) {
    if default().xShutdown.is_some() {
        call!(xShutdown(default().pArg))
    }
}

unsafe extern "C" fn create(
    page_size: c_int,
    extra: c_int,
    purgeable: c_int,
) -> *mut ffi::sqlite3_pcache {
    let inner = call!(xCreate(page_size, extra, purgeable));
    if inner.is_null() {
        return inner;
    }
    let cache = Cache {
        inner,
        largest: 0,
        pending_page: PENDING_BYTE / c_uint::try_from(page_size.max(1)).unwrap_or(1) + 1,
    };
    Box::into_raw(Box::new(cache)).cast()
}

unsafe extern "C" fn cachesize(p: *mut ffi::sqlite3_pcache, pages: c_int) {
    let inner = unsafe { cache(p) }.inner;
    call!(xCachesize(inner, pages))
}

unsafe extern "C" fn pagecount(p: *mut ffi::sqlite3_pcache) -> c_int {
    let inner = unsafe { cache(p) }.inner;
    call!(xPagecount(inner))
}

unsafe extern "C" fn fetch(
    p: *mut ffi::sqlite3_pcache,
    key: c_uint,
    create: c_int,
) -> *mut ffi::sqlite3_pcache_page {
    let cache = unsafe { cache(p) };
    cache.saw(key);
    call!(xFetch(cache.inner, key, create))
}

unsafe extern "C" fn unpin(
    p: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    discard: c_int,
) {
    let inner = unsafe { cache(p) }.inner;
    call!(xUnpin(inner, page, discard))
}

unsafe extern "C" fn rekey(
    p: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    old: c_uint,
    new: c_uint,
) {
    let cache = unsafe { cache(p) };
    cache.saw(new);
    call!(xRekey(cache.inner, page, old, new))
}

/// Drops the pages numbered `limit` or more; none are cached when `limit` exceeds `largest`
/// (a swap leaves nothing at the pending-byte page: it moves a page there and back).
unsafe extern "C" fn truncate(p: *mut ffi::sqlite3_pcache, limit: c_uint) {
    let cache = unsafe { cache(p) };
    if limit > cache.largest {
        return;
    }
    call!(xTruncate(cache.inner, limit));
    cache.largest = limit.saturating_sub(1);
}

unsafe extern "C" fn destroy(p: *mut ffi::sqlite3_pcache) {
    // SAFETY: `p` came from Box::into_raw in `create`, and SQLite destroys a cache once.
    let cache = unsafe { Box::from_raw(p.cast::<Cache>()) };
    call!(xDestroy(cache.inner))
}

unsafe extern "C" fn shrink(p: *mut ffi::sqlite3_pcache) {
    if default().xShrink.is_some() {
        let inner = unsafe { cache(p) }.inner;
        call!(xShrink(inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: c_int = 2048;

    /// Page `key` if cached, without creating it.
    fn cached(p: *mut ffi::sqlite3_pcache, key: c_uint) -> bool {
        unsafe { !fetch(p, key, 0).is_null() }
    }

    /// Lookaside slots a connection has used at most since it opened.
    fn lookaside_high_water(conn: &rusqlite::Connection) -> c_int {
        let (mut current, mut high) = (0, 0);
        let rc = unsafe {
            ffi::sqlite3_db_status(
                conn.handle(),
                ffi::SQLITE_DBSTATUS_LOOKASIDE_USED,
                &mut current,
                &mut high,
                0,
            )
        };
        assert_eq!(rc, ffi::SQLITE_OK);
        high
    }

    #[test]
    fn connections_get_more_lookaside_than_the_default() {
        assert!(install(), "installed before SQLite starts");
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT); INSERT INTO t VALUES (1, 'x')",
        )
        .unwrap();
        // Statements stopped at their first row hold their cursors and registers.
        let sql = c"SELECT b FROM t";
        let running: Vec<_> = (0..100)
            .map(|_| unsafe {
                let mut stmt = std::ptr::null_mut();
                let rc = ffi::sqlite3_prepare_v2(
                    conn.handle(),
                    sql.as_ptr(),
                    -1,
                    &mut stmt,
                    std::ptr::null_mut(),
                );
                assert_eq!(rc, ffi::SQLITE_OK);
                assert_eq!(ffi::sqlite3_step(stmt), ffi::SQLITE_ROW);
                stmt
            })
            .collect();
        let used = lookaside_high_water(&conn);
        for stmt in running {
            unsafe { ffi::sqlite3_finalize(stmt) };
        }
        // The default (1,200-byte slots, 48 KiB) has 123 slots of both sizes.
        assert!(used > 123, "used {used} slots");
    }

    #[test]
    fn a_swap_through_the_pending_page_leaves_truncation_exact_and_skippable() {
        assert!(install(), "installed before SQLite starts");
        assert_eq!(unsafe { ffi::sqlite3_initialize() }, ffi::SQLITE_OK);
        unsafe {
            let p = create(PAGE, 64, 1);
            assert!(!p.is_null());
            cachesize(p, 100);
            let pages: Vec<_> = (1..=10).map(|key| fetch(p, key, 2)).collect();
            assert!(pages.iter().all(|page| !page.is_null()));
            // balance_nonroot's swap of pages 4 and 7.
            let pending = PENDING_BYTE / PAGE as c_uint + 1;
            rekey(p, pages[3], 4, pending);
            rekey(p, pages[6], 7, 4);
            rekey(p, pages[3], pending, 7);
            for page in &pages {
                unpin(p, *page, 0);
            }
            assert_eq!(cache(p).largest, 10, "the pending page is not counted");

            truncate(p, 11);
            assert!((1..=10).all(|key| cached(p, key)), "nothing to drop");
            truncate(p, 6);
            assert!((1..=5).all(|key| cached(p, key)));
            assert!((6..=10).all(|key| !cached(p, key)), "dropped from 6 on");
            assert_eq!(pagecount(p), 5);
            destroy(p);
        }
    }
}
