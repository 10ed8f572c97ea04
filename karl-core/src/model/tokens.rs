//! Token sets and the `.karl` token file: a small versioned container (magic, format version,
//! payload length, postcard payload holding the model id, CRC-32) that decoding needs with
//! only the model.
use crate::error::{Error, Result};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// File magic.
pub const MAGIC: [u8; 8] = *b"KARLTOK\0";
/// Current format version.
pub const FORMAT_VERSION: u16 = 1;

/// Codes of the kept tokens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TokenCodes {
    /// Indices into the latent codebook.
    Quantized(Vec<u16>),
    /// Continuous latents: `dim` floats per kept token.
    Continuous {
        /// Floats per token (12).
        dim: u16,
        /// Row-major values.
        values: Vec<f32>,
    },
}

/// One image's token set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tokens {
    /// Identifies the model (name + weight fingerprint) that made and can decode these tokens.
    pub model_id: String,
    /// Token budget T of the encoder pass.
    pub budget: u32,
    /// Requested quality ε (image-level mean absolute error in [0, 1]).
    pub quality: f32,
    /// Index of ε's bin.
    pub quality_bin: u8,
    /// Fixed-length mode (no halting).
    pub fixed: bool,
    /// Image size the model works at (width, height).
    pub image_size: [u32; 2],
    /// Positions (< budget, strictly increasing) of the kept tokens.
    pub positions: Vec<u16>,
    /// Their codes.
    pub codes: TokenCodes,
}

impl Tokens {
    /// Number of kept tokens: the complexity estimate KC.
    pub fn kc(&self) -> usize {
        self.positions.len()
    }
    /// Codes as integers (quantised models).
    pub fn code_indices(&self) -> Option<&[u16]> {
        match &self.codes {
            TokenCodes::Quantized(c) => Some(c),
            TokenCodes::Continuous { .. } => None,
        }
    }
    /// Checks internal consistency (positions increasing and within the budget, one code per
    /// position).
    pub fn validate(&self) -> Result<()> {
        if self.positions.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::Format(String::from("token positions are not strictly increasing")));
        }
        if let Some(&last) = self.positions.last()
            && last as u32 >= self.budget
        {
            return Err(Error::Format(format!("token position {last} is outside the budget {}", self.budget)));
        }
        let n = match &self.codes {
            TokenCodes::Quantized(c) => c.len(),
            TokenCodes::Continuous { dim, values } => {
                if *dim == 0 || values.len() % *dim as usize != 0 {
                    return Err(Error::Format(format!(
                        "{} continuous values are not a multiple of dim {dim}",
                        values.len()
                    )));
                }
                values.len() / *dim as usize
            }
        };
        if n != self.positions.len() {
            return Err(Error::Format(format!("{n} codes for {} positions", self.positions.len())));
        }
        Ok(())
    }

    /// Serialises to the `.karl` container.
    pub fn to_bytes(&self) -> Vec<u8> {
        container_to_bytes(MAGIC, FORMAT_VERSION, self)
    }

    /// Parses a `.karl` container, rejecting anything truncated, corrupted or of another version.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let t: Tokens = container_from_bytes(bytes, MAGIC, FORMAT_VERSION, "token file")?;
        t.validate()?;
        Ok(t)
    }
}

/// The container: magic, format version (u16 LE), payload length (u32 LE), postcard payload,
/// CRC-32 of everything before it.
pub(crate) fn container_to_bytes<T: Serialize>(magic: [u8; 8], version: u16, value: &T) -> Vec<u8> {
    let payload = postcard::to_allocvec(value).expect("in-memory serialisation cannot fail");
    let mut out = Vec::with_capacity(payload.len() + 18);
    out.extend_from_slice(&magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Reads a container written by `container_to_bytes`; `what` names the file kind in errors.
pub(crate) fn container_from_bytes<T: serde::de::DeserializeOwned + Serialize>(
    bytes: &[u8],
    magic: [u8; 8],
    version: u16,
    what: &str,
) -> Result<T> {
    let fmt = |m: String| Err(Error::Format(m));
    if bytes.len() < 18 {
        return fmt(format!("{what} is {} bytes, shorter than the 18-byte container", bytes.len()));
    }
    if bytes[..8] != magic {
        return fmt(format!("not a KARL {what} (bad magic)"));
    }
    let found = u16::from_le_bytes([bytes[8], bytes[9]]);
    if found != version {
        return fmt(format!("{what} format version {found} is not supported (this build reads {version})"));
    }
    let len = u32::from_le_bytes([bytes[10], bytes[11], bytes[12], bytes[13]]) as usize;
    if bytes.len() != 18 + len {
        return fmt(format!("{what} is {} bytes, the header announces {}", bytes.len(), 18 + len));
    }
    let body = &bytes[..14 + len];
    let crc = u32::from_le_bytes([bytes[14 + len], bytes[15 + len], bytes[16 + len], bytes[17 + len]]);
    if crc32fast::hash(body) != crc {
        return fmt(format!("{what} checksum mismatch (corrupted)"));
    }
    let payload = &bytes[14..14 + len];
    let value: T = postcard::from_bytes(payload).map_err(|e| Error::Format(format!("{what} payload: {e}")))?;
    // postcard ignores trailing bytes and accepts over-long integers: only the canonical
    // encoding is a valid file, so that a file that reads writes back to the same bytes.
    let canonical = postcard::to_allocvec(&value).expect("in-memory serialisation cannot fail");
    if canonical != payload {
        return fmt(format!(
            "{what} payload of {len} bytes is not in canonical form (its content encodes to {} bytes: \
             trailing bytes or over-long integers)",
            canonical.len()
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Tokens {
        Tokens {
            model_id: "m".into(),
            budget: 300,
            quality: 0.05,
            quality_bin: 5,
            fixed: false,
            image_size: [32, 32],
            positions: vec![0, 3, 299],
            codes: TokenCodes::Quantized(vec![1, 2, 1000]),
        }
    }

    /// `payload` in a container with a valid length and checksum.
    fn seal(payload: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(payload);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    #[test]
    fn round_trip_and_corruption() {
        let t = sample();
        let bytes = t.to_bytes();
        assert_eq!(Tokens::from_bytes(&bytes).unwrap(), t);
        let mut flipped = bytes.clone();
        flipped[16] ^= 1;
        assert!(Tokens::from_bytes(&flipped).unwrap_err().to_string().contains("checksum"));
        let mut version = bytes.clone();
        version[8] = 2;
        assert!(Tokens::from_bytes(&version).unwrap_err().to_string().contains("version 2"));
    }

    /// Found by the `token_file` fuzz target: a payload with bytes after the value read as the
    /// value alone, so the file did not write back to the same bytes.
    #[test]
    fn trailing_payload_bytes_are_refused() {
        let mut payload = postcard::to_allocvec(&sample()).unwrap();
        assert!(Tokens::from_bytes(&seal(&payload)).is_ok());
        payload.extend_from_slice(&[0, 0, 7]);
        let e = Tokens::from_bytes(&seal(&payload)).unwrap_err().to_string();
        assert!(e.contains("not in canonical form") && e.contains("encodes to"), "{e}");
    }

    /// An integer written with more varint bytes than needed (budget 300 as 3 bytes instead of 2).
    #[test]
    fn over_long_integers_are_refused() {
        let payload = postcard::to_allocvec(&sample()).unwrap();
        // model_id "m" is 2 bytes (length, 'm'); the budget 300 = 0xac 0x02 follows.
        assert_eq!(&payload[2..4], &[0xac, 0x02]);
        let mut long = payload[..2].to_vec();
        long.extend_from_slice(&[0xac, 0x82, 0x00]);
        long.extend_from_slice(&payload[4..]);
        let e = Tokens::from_bytes(&seal(&long)).unwrap_err().to_string();
        assert!(e.contains("not in canonical form"), "{e}");
    }
}
