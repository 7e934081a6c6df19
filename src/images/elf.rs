//! Just enough ELF to tell a static executable from a dynamic one: a dynamic one names its loader in a PT_INTERP
//! program header. Static-pie binaries (such as restate-server) have no PT_INTERP, so they count as static.

const PT_INTERP: u32 = 3;

/// The loader a dynamic executable asks for (e.g. `/lib64/ld-linux-x86-64.so.2`), None for a static one, or why
/// the bytes are not an ELF executable we understand.
pub fn interpreter(bytes: &[u8]) -> Result<Option<String>, String> {
    if bytes.len() < 0x40 || &bytes[..4] != b"\x7fELF" {
        return Err("it is not an ELF executable".into());
    }
    let wide = match bytes[4] {
        1 => false,
        2 => true,
        _ => return Err("its ELF class is unknown".into()),
    };
    let little = match bytes[5] {
        1 => true,
        2 => false,
        _ => return Err("its ELF byte order is unknown".into()),
    };
    let read = |at: usize, len: usize| -> Result<u64, String> {
        let field = bytes.get(at..at + len).ok_or("its ELF headers are truncated")?;
        let mut value = 0u64;
        for i in 0..len {
            let byte = if little { field[len - 1 - i] } else { field[i] };
            value = (value << 8) | u64::from(byte);
        }
        Ok(value)
    };
    let (phoff, phentsize, phnum) = if wide {
        (read(0x20, 8)?, read(0x36, 2)?, read(0x38, 2)?)
    } else {
        (read(0x1c, 4)?, read(0x2a, 2)?, read(0x2c, 2)?)
    };
    for i in 0..phnum {
        let header = usize::try_from(phoff + i * phentsize).map_err(|_| "its ELF headers are out of range")?;
        if read(header, 4)? as u32 != PT_INTERP {
            continue;
        }
        let (offset, size) = if wide {
            (read(header + 8, 8)?, read(header + 0x20, 8)?)
        } else {
            (read(header + 4, 4)?, read(header + 0x10, 4)?)
        };
        let start = usize::try_from(offset).map_err(|_| "its loader path is out of range")?;
        let end = start + usize::try_from(size).map_err(|_| "its loader path is out of range")?;
        let raw = bytes.get(start..end).ok_or("its loader path is truncated")?;
        let path = raw.split(|b| *b == 0).next().unwrap_or_default();
        return Ok(Some(String::from_utf8_lossy(path).into_owned()));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_test_binary_is_read() {
        // Test binaries are built like the real one: dynamic on glibc unless crt-static is on.
        let bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let interp = interpreter(&bytes).unwrap();
        if let Some(path) = interp {
            assert!(path.starts_with('/') && path.contains("ld"), "{path}");
        }
    }

    #[test]
    fn a_minimal_static_elf_has_no_interpreter() {
        let mut elf = vec![0u8; 0x40];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        assert_eq!(interpreter(&elf), Ok(None));
    }

    #[test]
    fn a_dynamic_elf_names_its_loader() {
        // A 64-bit little-endian header with one PT_INTERP program header pointing at a path.
        let mut elf = vec![0u8; 0x40 + 0x38];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[0x20] = 0x40; // e_phoff
        elf[0x36] = 0x38; // e_phentsize
        elf[0x38] = 1; // e_phnum
        let path = b"/lib/ld.so\0";
        let offset = elf.len();
        elf[0x40] = 3; // p_type = PT_INTERP
        elf[0x48] = offset as u8; // p_offset
        elf[0x60] = path.len() as u8; // p_filesz
        elf.extend_from_slice(path);
        assert_eq!(interpreter(&elf), Ok(Some("/lib/ld.so".into())));
    }

    #[test]
    fn scripts_are_refused() {
        let e = interpreter(b"#!/usr/bin/env node\nrequire('x')\n").unwrap_err();
        assert!(e.contains("not an ELF"), "{e}");
    }
}
