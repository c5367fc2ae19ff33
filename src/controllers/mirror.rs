//! Image mirrors: URL prefixes rewritten before any image is fetched.
//!
//! A provider running clusters without internet access (or one that keeps
//! golden images on its own storage) maps public image URLs to a local
//! mirror; partnercloud rewrites the URL in every import it renders and in
//! its own checksum downloads, so manifests keep their public URLs.

use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageMirror {
    pub from: String,
    pub to: String,
}

impl FromStr for ImageMirror {
    type Err = String;

    /// `FROM=TO`, e.g. `https://images.example.com/=http://mirror.local/`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (from, to) = text
            .split_once('=')
            .ok_or_else(|| format!("{text:?} is not FROM=TO"))?;
        if from.is_empty() || to.is_empty() {
            return Err(format!("{text:?}: both FROM and TO must be URL prefixes"));
        }
        Ok(Self {
            from: from.to_string(),
            to: to.to_string(),
        })
    }
}

/// The URL to fetch: the first mirror whose prefix matches, else the URL.
pub fn rewrite(mirrors: &[ImageMirror], url: &str) -> String {
    mirrors
        .iter()
        .find_map(|m| {
            url.strip_prefix(&m.from)
                .map(|rest| format!("{}{rest}", m.to))
        })
        .unwrap_or_else(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_prefix_wins_and_others_pass_through() {
        let mirrors: Vec<ImageMirror> = [
            "https://images.example.com/=http://127.0.0.1:9000/",
            "https://=http://proxy/",
        ]
        .iter()
        .map(|m| m.parse().unwrap())
        .collect();
        assert_eq!(
            rewrite(&mirrors, "https://images.example.com/win.qcow2"),
            "http://127.0.0.1:9000/win.qcow2"
        );
        assert_eq!(
            rewrite(&mirrors, "https://other.example/x.iso"),
            "http://proxy/other.example/x.iso"
        );
        assert_eq!(
            rewrite(&mirrors, "http://plain.example/x.iso"),
            "http://plain.example/x.iso"
        );
        assert!("no-equals".parse::<ImageMirror>().is_err());
        assert!("=x".parse::<ImageMirror>().is_err());
    }
}
