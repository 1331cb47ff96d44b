//! Writing a response frame's parts to a socket: encoded bytes with `write`, file ranges with
//! `sendfile(2)` (the kernel moves page-cache pages to the socket; no copy through user space),
//! or read and written when the storage has no file descriptor (in-memory storage in tests).
//!
//! A multi-part frame is written under `TCP_CORK`, so its small encoded pieces and file ranges
//! leave in full segments rather than one packet per piece; uncorking flushes the tail at once.
//! A file range that ends early (cannot happen: ranges lie below the high watermark) is an
//! error: the frame cannot be finished, so the caller closes the connection.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

use crate::response::Part;

/// Largest count one `sendfile` call takes on Linux.
const SENDFILE_MAX: u64 = 0x7fff_f000;

pub async fn write_parts(wr: &mut OwnedWriteHalf, parts: &[Part]) -> io::Result<()> {
    let corked = parts.len() > 1 && set_cork(wr.as_ref(), true).is_ok();
    let result = write_each(wr, parts).await;
    if corked {
        // Uncorking sends what is still held back; a failure here only delays it.
        let _ = set_cork(wr.as_ref(), false);
    }
    result
}

async fn write_each(wr: &mut OwnedWriteHalf, parts: &[Part]) -> io::Result<()> {
    for part in parts {
        match part {
            Part::Bytes(b) => wr.write_all(b).await?,
            Part::File(f) if f.is_empty() => {}
            Part::File(f) => match f.raw_fd() {
                Some(fd) => send_file(wr.as_ref(), fd, f.position(), f.len()).await?,
                None => wr.write_all(&f.read()?).await?,
            },
        }
    }
    Ok(())
}

/// Sends `len` bytes of `file` from `position` to the socket, waiting whenever it is full.
async fn send_file(stream: &TcpStream, file: RawFd, position: u64, len: u64) -> io::Result<()> {
    let socket = stream.as_raw_fd();
    let end = position + len;
    let mut offset = position as libc::off_t;
    while (offset as u64) < end {
        stream.writable().await?;
        let count = (end - offset as u64).min(SENDFILE_MAX) as usize;
        let sent = stream.try_io(Interest::WRITABLE, || {
            // SAFETY: both descriptors are open for the duration of the call (the socket is
            // borrowed from `stream`, the file is held by the caller's `FileSlice`), and
            // `offset` is a valid `off_t` that the kernel advances by what it sent.
            let n = unsafe { libc::sendfile(socket, file, &mut offset, count) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        match sent {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("segment file ended at {offset}, before {end}"),
                ))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn set_cork(stream: &TcpStream, on: bool) -> io::Result<()> {
    let value: libc::c_int = on.into();
    // SAFETY: a valid socket descriptor borrowed from `stream`, and a pointer to a c_int that
    // lives across the call, with its size.
    let r = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CORK,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
