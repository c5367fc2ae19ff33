//! Deterministic names of a server's children.

/// The VirtualMachine has the server's name.
pub fn vm(server: &str) -> String {
    server.to_string()
}

/// The DataVolume of one disk.
pub fn disk(server: &str, disk: &str) -> String {
    format!("{server}-{disk}")
}

/// The DataVolume holding the installation ISO (`cdrom` is a reserved disk name).
pub fn iso(server: &str) -> String {
    format!("{server}-cdrom")
}

/// The temporary snapshot of the source server a hot copy is made from.
pub fn clone_snapshot(server: &str) -> String {
    format!("{server}-clone-source")
}

/// The Service and NetworkPolicy of one exposure (a DNS-1035 label: the
/// exposure name starts with a letter).
pub fn exposure(server: &str, exposure: &str) -> String {
    format!("{exposure}-{server}")
}

/// VM volume names inside the VM spec.
pub const CDROM_VOLUME: &str = "cdrom";
pub const FIRSTBOOT_VOLUME: &str = "firstboot";
