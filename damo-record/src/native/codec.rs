//! LEB128 varints and length-prefixed bytes over `bytes` buffers.

use bytes::{Buf, BufMut};

pub fn put_varint(buf: &mut impl BufMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// `None` when the input ends inside the varint or it overflows 64 bits.
pub fn get_varint(buf: &mut impl Buf) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        if !buf.has_remaining() {
            return None;
        }
        let byte = buf.get_u8();
        v |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

pub fn put_bytes(buf: &mut impl BufMut, bytes: &[u8]) {
    put_varint(buf, bytes.len() as u64);
    buf.put_slice(bytes);
}

pub fn get_bytes(buf: &mut impl Buf) -> Option<Vec<u8>> {
    let len = usize::try_from(get_varint(buf)?).ok()?;
    if buf.remaining() < len {
        return None;
    }
    let mut out = vec![0; len];
    buf.copy_to_slice(&mut out);
    Some(out)
}

/// Optional values: 0 is `None`, n + 1 is `Some(n)`.
pub fn put_opt(buf: &mut impl BufMut, v: Option<u64>) {
    put_varint(buf, v.map_or(0, |v| v.saturating_add(1)));
}

pub fn get_opt(buf: &mut impl Buf) -> Option<Option<u64>> {
    Some(get_varint(buf)?.checked_sub(1))
}

/// Signed differences: 0, -1, 1, -2… become 0, 1, 2, 3…
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_reject_garbage() {
        let mut buf = Vec::new();
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            put_varint(&mut buf, v);
        }
        let mut r = &buf[..];
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(get_varint(&mut r), Some(v));
        }
        assert_eq!(get_varint(&mut &[0x80u8][..]), None, "cut inside a varint");
        assert_eq!(get_varint(&mut &[0xffu8; 11][..]), None, "longer than 64 bits");
        assert_eq!(get_bytes(&mut &[5u8, 1, 2][..]), None, "length past the end");
        for v in [0, 1, -1, 1000, -1000, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
    }
}
