//! A SQLite VFS that writes each commit's WAL frames in one system call.
//!
//! SQLite appends a commit to the WAL as two writes per page: the 24-byte frame header, then
//! the page. Under waygate's load a commit of ~25 sends dirties ~85 pages, so the writer
//! thread made ~170 `pwrite` calls per commit (now 2-4), about 13 µs of kernel time a send
//! (a fifth of the writer's time), most of it the per-call cost rather than the copy.
//!
//! This VFS is the default (unix) VFS with one change: a WAL file it opens gathers frames
//! (a 24-byte header, then its page, at the end of what is gathered) in memory and hands them
//! to the real file as one write when the commit's last page arrives (the page after a frame
//! header whose "database size after commit" field is not zero; see SQLite's WAL file
//! format). Any other write is passed through at once, after what is gathered. Everything
//! that could look at the file first writes out what is gathered: reads, syncs, size
//! queries, truncation, close, and a write anywhere but at the end of the gathered run. So
//! when SQLite publishes the commit in the WAL index, its frames are already in the file,
//! which is what other connections read, and a failed write fails the commit as it would
//! have without the buffer. Should a SQLite upgrade write frames differently, the crate's
//! tests fail.

use std::ffi::{c_int, c_void, CStr};
use std::sync::OnceLock;

use rusqlite::ffi;

/// The VFS's name, for `Connection::open_with_flags_and_vfs`.
pub const NAME: &str = "waygate-walbuf";
const NAME_C: &CStr = c"waygate-walbuf";

/// A WAL frame header's size; bytes 4..8 hold the database size for a commit frame, else 0.
const FRAME_HEADER: usize = 24;

/// Gathered bytes past which they are written out even before the commit ends (a large
/// transaction, or a cache spill).
const FLUSH_AT: usize = 4 << 20;

/// The most the default VFS writes in one call: it masks a larger count to 17 bits.
const WRITE_CHUNK: usize = 64 << 10;

/// The default VFS that this one wraps.
struct Base(*mut ffi::sqlite3_vfs);
// SAFETY: SQLite's VFS objects live for the process and are used from any thread.
unsafe impl Send for Base {}
unsafe impl Sync for Base {}

static BASE: OnceLock<Base> = OnceLock::new();

/// Registers the VFS (not as the default). Call it after anything that must configure SQLite
/// before it initialises (the page cache), since registering initialises SQLite. Returns
/// whether the VFS can be used.
pub fn register() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    // SAFETY: see register_once.
    *REGISTERED.get_or_init(|| unsafe { register_once() })
}

unsafe fn register_once() -> bool {
    // SAFETY: a null name finds the default VFS; SQLite keeps it for the process.
    let base = unsafe { ffi::sqlite3_vfs_find(std::ptr::null()) };
    if base.is_null() {
        return false;
    }
    // SAFETY: non-null, and SQLite's VFS objects are never freed.
    let mut vfs = unsafe { *base };
    if vfs.xOpen.is_none() || BASE.set(Base(base)).is_err() {
        return false;
    }
    vfs.zName = NAME_C.as_ptr();
    vfs.pNext = std::ptr::null_mut();
    vfs.szOsFile = (std::mem::size_of::<WalFile>() + vfs.szOsFile as usize) as c_int;
    vfs.xOpen = Some(open);
    // SQLite keeps the pointer for the rest of the process.
    let vfs = Box::leak(Box::new(vfs));
    // SAFETY: a complete VFS object that outlives every connection.
    unsafe { ffi::sqlite3_vfs_register(vfs, 0) == ffi::SQLITE_OK }
}

/// A WAL file: SQLite's file object, the gathered bytes, then the default VFS's file object
/// (SQLite allocates `szOsFile` bytes for it all).
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    gathered: *mut Gathered,
}

#[derive(Default)]
struct Gathered {
    bytes: Vec<u8>,
    /// The file offset of `bytes[0]`.
    start: i64,
    next: Next,
}

/// What the next gathered write should be. SQLite writes a frame as its 24-byte header, then
/// its page; anything else is passed through at once.
#[derive(Default, Clone, Copy)]
enum Next {
    #[default]
    Header,
    /// The page of the frame whose header came last; `commit` when that frame ends a commit.
    Page { commit: bool },
}

fn base() -> *mut ffi::sqlite3_vfs {
    BASE.get().map_or(std::ptr::null_mut(), |b| b.0)
}

/// The default VFS's file object inside ours.
unsafe fn inner(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    // SAFETY: SQLite allocated szOsFile bytes, WalFile first and the inner file after it.
    unsafe { file.cast::<u8>().add(std::mem::size_of::<WalFile>()).cast() }
}

unsafe fn inner_methods(file: *mut ffi::sqlite3_file) -> &'static ffi::sqlite3_io_methods {
    // SAFETY: only called on files whose inner open succeeded (pMethods set, static).
    unsafe { &*(*inner(file)).pMethods }
}

unsafe fn gathered<'a>(file: *mut ffi::sqlite3_file) -> &'a mut Gathered {
    // SAFETY: set in open before pMethods points at WAL_METHODS; SQLite never calls one
    // file's methods from two threads at once.
    unsafe { &mut *(*file.cast::<WalFile>()).gathered }
}

unsafe extern "C" fn open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SQLite passes this VFS; the files are the default VFS's, opened through it.
    let _ = vfs;
    let base = base();
    // SAFETY: registered only with a base whose xOpen is set.
    let base_open = unsafe { (*base).xOpen.expect("checked at registration") };
    if flags & ffi::SQLITE_OPEN_WAL == 0 {
        // Any other file is the default VFS's own, at the start of the space SQLite gave.
        // SAFETY: the space is larger than the default VFS asks for.
        return unsafe { base_open(base, name, file, flags, out_flags) };
    }
    // SAFETY: file points at szOsFile writable bytes.
    unsafe {
        (*file).pMethods = std::ptr::null();
        let rc = base_open(base, name, inner(file), flags, out_flags);
        // SQLite calls xClose after a failed open when pMethods is set, so ours is set
        // whenever the inner file's is.
        if !(*inner(file)).pMethods.is_null() {
            (*file.cast::<WalFile>()).gathered = Box::into_raw(Box::default());
            (*file).pMethods = &WAL_METHODS;
        }
        rc
    }
}

/// Writes `data` at `offset` through the inner file, in calls the default VFS takes whole.
unsafe fn write_through(file: *mut ffi::sqlite3_file, data: &[u8], offset: i64) -> c_int {
    // SAFETY: called on open WAL files only.
    let write = unsafe { inner_methods(file) }
        .xWrite
        .expect("the default VFS writes");
    let mut offset = offset;
    for chunk in data.chunks(WRITE_CHUNK) {
        // SAFETY: the inner file is open; the chunk is readable and short enough.
        let rc = unsafe {
            write(
                inner(file),
                chunk.as_ptr().cast(),
                chunk.len() as c_int,
                offset,
            )
        };
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        offset += chunk.len() as i64;
    }
    ffi::SQLITE_OK
}

/// Writes out what is gathered.
unsafe fn flush(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: called on open WAL files only.
    let g = unsafe { gathered(file) };
    if g.bytes.is_empty() {
        return ffi::SQLITE_OK;
    }
    #[cfg(test)]
    tests::FLUSHES.with(|n| n.set(n.get() + 1));
    // SAFETY: as above.
    let rc = unsafe { write_through(file, &g.bytes, g.start) };
    g.bytes.clear();
    rc
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: SQLite passes amount readable bytes.
    let data = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), amount as usize) };
    // SAFETY: an open WAL file.
    let g = unsafe { gathered(file) };
    let at_end = offset == g.start + g.bytes.len() as i64;
    let expected = match g.next {
        _ if data.len() == FRAME_HEADER => Some(data[4..8] != [0; 4]),
        Next::Page { commit } if at_end => Some(commit),
        _ => None,
    };
    if !g.bytes.is_empty() && (!at_end || expected.is_none()) {
        // SAFETY: as above.
        let rc = unsafe { flush(file) };
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    let Some(commit) = expected else {
        // Not a frame (the WAL header, padding): written as it comes.
        g.next = Next::Header;
        // SAFETY: as above.
        return unsafe { write_through(file, data, offset) };
    };
    if g.bytes.is_empty() {
        g.start = offset;
    }
    g.bytes.extend_from_slice(data);
    let page_done = matches!(g.next, Next::Page { .. }) && data.len() != FRAME_HEADER;
    g.next = match page_done {
        true => Next::Header,
        false => Next::Page { commit },
    };
    if (page_done && commit) || g.bytes.len() >= FLUSH_AT {
        // SAFETY: as above.
        return unsafe { flush(file) };
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: an open WAL file; after this SQLite frees the space without another call.
    unsafe {
        let flushed = flush(file);
        let closed = inner_methods(file).xClose.expect("the default VFS closes")(inner(file));
        drop(Box::from_raw((*file.cast::<WalFile>()).gathered));
        (*file).pMethods = std::ptr::null();
        if flushed != ffi::SQLITE_OK {
            flushed
        } else {
            closed
        }
    }
}

/// Defines a method that writes out what is gathered, then passes the call on.
macro_rules! flush_then {
    ($name:ident, $method:ident, ($($arg:ident: $ty:ty),*)) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file, $($arg: $ty),*) -> c_int {
            // SAFETY: an open WAL file; the arguments are SQLite's, passed on unchanged.
            unsafe {
                let rc = flush(file);
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
                inner_methods(file).$method.expect("the default VFS has it")(inner(file), $($arg),*)
            }
        }
    };
}

/// Defines a method that passes the call on.
macro_rules! pass {
    ($name:ident, $method:ident, ($($arg:ident: $ty:ty),*)) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file, $($arg: $ty),*) -> c_int {
            // SAFETY: an open WAL file; the arguments are SQLite's, passed on unchanged.
            unsafe { inner_methods(file).$method.expect("the default VFS has it")(inner(file), $($arg),*) }
        }
    };
}

flush_then!(read, xRead, (data: *mut c_void, amount: c_int, offset: i64));
flush_then!(truncate, xTruncate, (size: i64));
flush_then!(sync, xSync, (flags: c_int));
flush_then!(file_size, xFileSize, (size: *mut i64));
flush_then!(file_control, xFileControl, (op: c_int, arg: *mut c_void));
pass!(lock, xLock, (level: c_int));
pass!(unlock, xUnlock, (level: c_int));
pass!(check_reserved_lock, xCheckReservedLock, (out: *mut c_int));
pass!(sector_size, xSectorSize, ());
pass!(device_characteristics, xDeviceCharacteristics, ());

/// Version 1: a WAL file is never memory-mapped and holds no shared memory.
static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

#[cfg(test)]
mod tests;
