//! How many connections the process can hold: every connection is a file descriptor, and
//! once they run out neither new requests, nor the database, nor provider calls can open one.

use tokio::sync::Semaphore;

/// Descriptors kept for everything but client connections: the database and its journal,
/// the job runner's and the providers' outgoing connections (a job batch may deliver to
/// hundreds of webhook hosts at once), logs.
const RESERVED: u64 = 384;

/// Linux's default ceiling for a process's open files (`fs.nr_open`); asking for more fails.
const NOFILE_WANTED: u64 = 1 << 20;

/// Raises the soft open-files limit to the hard one where allowed; returns the soft limit
/// in force, or `None` where the platform has none.
pub(super) fn raise_nofile_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(NOFILE_WANTED) {
        Ok(limit) => Some(limit),
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-files limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    }
}

/// The connection cap: `configured` (0 = as many as the file limit allows), never more
/// than the file limit leaves after the reserve.
pub(super) fn connection_limit(configured: usize, nofile: Option<u64>) -> usize {
    let Some(nofile) = nofile else {
        return match configured {
            0 => Semaphore::MAX_PERMITS,
            n => n,
        };
    };
    // Small limits keep half for connections rather than nothing.
    let room = nofile.saturating_sub(RESERVED).max(nofile / 2).max(1);
    let room = usize::try_from(room).unwrap_or(Semaphore::MAX_PERMITS);
    match configured {
        0 => room,
        n if n > room => {
            tracing::warn!(
                max_connections = n,
                open_files_limit = nofile,
                using = room,
                "max_connections is above what the open-files limit allows"
            );
            room
        }
        n => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_limit_leaves_the_reserve_free() {
        assert_eq!(connection_limit(0, Some(1024)), 1024 - 384);
        assert_eq!(connection_limit(0, Some(1 << 20)), (1 << 20) - 384);
    }

    #[test]
    fn small_file_limits_keep_half_for_connections() {
        assert_eq!(connection_limit(0, Some(256)), 128);
    }

    #[test]
    fn configured_limit_is_kept_below_the_file_limit() {
        assert_eq!(connection_limit(20, Some(1024)), 20);
        assert_eq!(connection_limit(5000, Some(1024)), 640);
        assert_eq!(connection_limit(5000, None), 5000);
    }
}
