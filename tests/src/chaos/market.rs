//! The folder through which the campaign's wallet processes trade invoices, so that none of
//! them needs another to be alive: each payee keeps a few invoices on offer under its index,
//! and a payer takes one by renaming it into `claimed/` (a rename is atomic: two payers never
//! take the same invoice). Whatever a SIGKILL interrupts is harmless: an invoice written but
//! not offered, or claimed but not paid, is just never paid.

use std::path::{Path, PathBuf};

/// File whose presence tells every wallet to stop paying and only stay online.
const STOP: &str = "STOP";
const CLAIMED: &str = "claimed";

#[derive(Debug, Clone)]
pub struct Market {
    root: PathBuf,
}

impl Market {
    pub fn new(root: &Path) -> std::io::Result<Market> {
        std::fs::create_dir_all(root.join(CLAIMED))?;
        Ok(Market { root: root.into() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn shelf(&self, payee: usize) -> PathBuf {
        self.root.join(payee.to_string())
    }

    /// How many of `payee`'s invoices are on offer.
    pub fn offered(&self, payee: usize) -> usize {
        self.listing(payee).len()
    }

    /// Puts an invoice of `payee` on offer (written aside first, so no payer reads half of it).
    pub fn offer(&self, payee: usize, hashlock: &str, invoice: &str) -> std::io::Result<()> {
        let shelf = self.shelf(payee);
        std::fs::create_dir_all(&shelf)?;
        let tmp = shelf.join(format!("{hashlock}.tmp"));
        std::fs::write(&tmp, invoice)?;
        std::fs::rename(&tmp, shelf.join(format!("{hashlock}.inv")))
    }

    /// Takes one of `payee`'s offered invoices for `payer`, if any is left.
    pub fn claim(&self, payee: usize, payer: usize) -> Option<String> {
        for offer in self.listing(payee) {
            let Some(name) = offer.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let taken = self.root.join(CLAIMED).join(format!("{name}-{payer}.inv"));
            if std::fs::rename(&offer, &taken).is_ok() {
                return std::fs::read_to_string(&taken).ok();
            }
        }
        None
    }

    /// Invoices taken by payers so far: the payments the campaign attempted.
    pub fn claimed(&self) -> usize {
        std::fs::read_dir(self.root.join(CLAIMED)).map_or(0, |d| d.count())
    }

    pub fn stop(&self) -> std::io::Result<()> {
        std::fs::write(self.root.join(STOP), b"")
    }

    pub fn stopped(&self) -> bool {
        self.root.join(STOP).exists()
    }

    fn listing(&self, payee: usize) -> Vec<PathBuf> {
        let Ok(dir) = std::fs::read_dir(self.shelf(payee)) else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "inv"))
            .collect()
    }
}
