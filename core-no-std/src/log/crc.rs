//! CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), the checksum zlib and Ethernet use.
//!
//! A 16-entry (nibble) table: 64 bytes of `.rodata` instead of the usual 1 KiB, at about half
//! the speed of the byte table. The log checksums every record once on append and once per
//! read, so this is nowhere near the cost of the flash access itself.

const POLY: u32 = 0xEDB8_8320;

const TABLE: [u32; 16] = {
    let mut t = [0u32; 16];
    let mut i = 0;
    while i < 16 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 4 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// A running CRC-32. `Crc32::new().update(b"123456789").finish() == 0xCBF43926`.
#[derive(Clone, Copy, Debug)]
pub struct Crc32(u32);

impl Crc32 {
    /// A fresh checksum.
    pub const fn new() -> Self {
        Crc32(!0)
    }

    /// Feeds `bytes`.
    #[must_use]
    pub fn update(mut self, bytes: &[u8]) -> Self {
        let mut c = self.0;
        for &b in bytes {
            c ^= u32::from(b);
            c = (c >> 4) ^ TABLE[(c & 0xF) as usize];
            c = (c >> 4) ^ TABLE[(c & 0xF) as usize];
        }
        self.0 = c;
        self
    }

    /// The checksum of everything fed so far.
    pub const fn finish(self) -> u32 {
        !self.0
    }
}

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::Crc32;

    #[test]
    fn known_answers() {
        assert_eq!(Crc32::new().finish(), 0);
        assert_eq!(Crc32::new().update(b"123456789").finish(), 0xCBF4_3926);
        assert_eq!(
            Crc32::new()
                .update(b"The quick brown fox jumps over the lazy dog")
                .finish(),
            0x414F_A339
        );
        // Feeding in pieces is the same as feeding at once.
        assert_eq!(
            Crc32::new().update(b"1234").update(b"56789").finish(),
            0xCBF4_3926
        );
    }
}
