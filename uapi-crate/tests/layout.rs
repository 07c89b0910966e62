//! Checks every struct size, alignment, field offset and constant of the
//! Rust mirrors against the uapi header, compiled with the system C compiler.
//!
//! The header comes from, in order:
//! 1. `OFFLOAD_UAPI_HEADER=/path/to/offload.h`;
//! 2. the kernel series: every `patches/*.patch` of the repository, in
//!    order, applied with `git apply --include=include/uapi/linux/offload.h`
//!    in an empty directory under the temp dir.
//!
//! Without either the test says so and passes (the series has not landed
//! yet); with `SYSCALL_OFFLOAD_REQUIRE_HEADER=1` it fails instead.

use std::collections::BTreeMap;
use std::io::Write;
use std::mem::{align_of, offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

use syscall_offload::raw::*;

const HEADER_IN_TREE: &str = "include/uapi/linux/offload.h";

fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("syscall-offload-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Returns the header's text, or None when there is no source for it.
fn header() -> Option<String> {
    if let Some(p) = std::env::var_os("OFFLOAD_UAPI_HEADER") {
        return Some(std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("OFFLOAD_UAPI_HEADER={p:?}: {e}")));
    }
    let patches = Path::new(env!("CARGO_MANIFEST_DIR")).join("../patches");
    let mut list: Vec<PathBuf> = std::fs::read_dir(&patches)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "patch"))
        // The cover letter (0000-*) has no diff for git apply to take.
        .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("0000-")))
        .collect();
    list.sort();
    assert!(!list.is_empty(), "{} has no *.patch", patches.display());
    let dir = temp_dir("series");
    for p in &list {
        let out = Command::new("git")
            .args(["apply", "--include", HEADER_IN_TREE])
            .arg(p)
            .current_dir(&dir)
            .output()
            .expect("run git apply");
        assert!(out.status.success(), "git apply {}: {}", p.display(), String::from_utf8_lossy(&out.stderr));
    }
    let text = std::fs::read_to_string(dir.join(HEADER_IN_TREE))
        .unwrap_or_else(|e| panic!("no patch in {} adds {HEADER_IN_TREE}: {e}", patches.display()));
    let _ = std::fs::remove_dir_all(&dir);
    Some(text)
}

/// What the header declares: struct fields, and macro/enum constant names.
struct Decls {
    fields: Vec<(String, String)>,
    consts: Vec<String>,
}

fn parse(text: &str) -> Decls {
    let mut fields = Vec::new();
    let mut consts = Vec::new();
    let mut in_struct: Option<String> = None;
    let mut in_enum = false;
    for line in text.lines() {
        let code = line.split("/*").next().unwrap_or("").trim();
        if let Some(rest) = code.strip_prefix("#define ") {
            let name = rest.split_whitespace().next().unwrap_or("");
            if name.starts_with("OFFLOAD_") {
                consts.push(name.to_string());
            }
        } else if let Some(rest) = code.strip_prefix("struct ") {
            if code.ends_with('{') {
                in_struct = Some(rest.trim_end_matches('{').trim().to_string());
            }
        } else if code.starts_with("enum") && code.ends_with('{') {
            in_enum = true;
        } else if code.starts_with('}') {
            in_struct = None;
            in_enum = false;
        } else if let Some(s) = &in_struct {
            if let Some(decl) = code.strip_suffix(';') {
                let name = decl.split('[').next().unwrap_or("").split_whitespace().last().unwrap_or("");
                fields.push((s.clone(), name.to_string()));
            }
        } else if in_enum {
            let name = code.split('=').next().unwrap_or("").trim().trim_end_matches(',');
            if name.starts_with("OFFLOAD_") {
                consts.push(name.to_string());
            }
        }
    }
    Decls { fields, consts }
}

/// Runs the C side: "struct.field size offset", "struct size align", "CONST value".
fn c_layout(text: &str, d: &Decls) -> BTreeMap<String, u64> {
    let dir = temp_dir("layout");
    std::fs::create_dir_all(dir.join("linux")).expect("mkdir");
    std::fs::write(dir.join("linux/offload.h"), text).expect("write header");
    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include <linux/offload.h>\nint main(void) {\n",
    );
    let mut structs: Vec<&String> = d.fields.iter().map(|(s, _)| s).collect();
    structs.dedup();
    for s in structs {
        c += &format!(
            "printf(\"{s} %zu %zu\\n\", sizeof(struct {s}), _Alignof(struct {s}));\n"
        );
    }
    for (s, f) in &d.fields {
        c += &format!(
            "printf(\"{s}.{f} %zu %zu\\n\", sizeof(((struct {s} *)0)->{f}), offsetof(struct {s}, {f}));\n"
        );
    }
    for k in &d.consts {
        c += &format!("printf(\"{k} %llu 0\\n\", (unsigned long long)({k}));\n");
    }
    c += "return 0;\n}\n";
    std::fs::write(dir.join("layout.c"), &c).expect("write C");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args(["-std=gnu11", "-Wall", "-Werror", "-I"])
        .arg(&dir)
        .arg(dir.join("layout.c"))
        .arg("-o")
        .arg(dir.join("layout"))
        .output()
        .expect("run cc");
    assert!(out.status.success(), "cc failed:\n{}\n{c}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(dir.join("layout")).output().expect("run layout");
    assert!(out.status.success());
    let _ = std::fs::remove_dir_all(&dir);
    let mut map = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: Vec<&str> = line.split_whitespace().collect();
        map.insert(format!("{} size", v[0]), v[1].parse().expect("number"));
        if !d.consts.iter().any(|k| k == v[0]) {
            let what = if v[0].contains('.') { "offset" } else { "align" };
            map.insert(format!("{} {what}", v[0]), v[2].parse().expect("number"));
        }
    }
    map
}

macro_rules! rust_struct {
    ($m:ident, $s:ident { $($f:ident),* $(,)? }) => {{
        $m.insert(format!("{} size", stringify!($s)), size_of::<$s>() as u64);
        $m.insert(format!("{} align", stringify!($s)), align_of::<$s>() as u64);
        let v = <$s>::default();
        $(
            $m.insert(format!("{}.{} size", stringify!($s), stringify!($f)), std::mem::size_of_val(&v.$f) as u64);
            $m.insert(format!("{}.{} offset", stringify!($s), stringify!($f)), offset_of!($s, $f) as u64);
        )*
    }};
}

macro_rules! rust_consts {
    ($m:ident, $($k:ident),* $(,)?) => {
        $( $m.insert(format!("{} size", stringify!($k)), $k as u64); )*
    };
}

fn rust_layout() -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    rust_struct!(m, offload_sqe { nr, flags, user_data, args });
    rust_struct!(m, offload_cqe { user_data, res });
    rust_struct!(m, offload_params {
        size, flags, sq_entries, cq_entries, worker_cpu, worker_idle_ms, features, resv0, ring_size,
        sq_head_off, sq_tail_off, sq_mask_off, sq_entries_off, sq_flags_off, sqes_off,
        cq_head_off, cq_tail_off, cq_mask_off, cq_entries_off, cqes_off, resv1, resv,
    });
    rust_consts!(m,
        OFFLOAD_SQE_LINK, OFFLOAD_SQE_SKIP_SUCCESS, OFFLOAD_SQE_ASYNC, OFFLOAD_SQE_FLAGS_ALL,
        OFFLOAD_SQ_NEED_WAKEUP, OFFLOAD_PARAMS_SIZE_VER0,
        OFFLOAD_SETUP_WORKER, OFFLOAD_SETUP_WORKER_CPU, OFFLOAD_SETUP_CQSIZE, OFFLOAD_SETUP_CLOEXEC,
        OFFLOAD_MAX_ENTRIES, OFFLOAD_MAX_CQ_ENTRIES,
        OFFLOAD_FEAT_SQE_LINK, OFFLOAD_FEAT_SQE_SKIP_SUCCESS, OFFLOAD_FEAT_SECCOMP, OFFLOAD_FEAT_WORKER,
        OFFLOAD_OFF_RING, OFFLOAD_ENTER_GETEVENTS, OFFLOAD_ENTER_SQ_WAKEUP,
        OFFLOAD_REGISTER_PROBE, OFFLOAD_REGISTER_ALLOWLIST, OFFLOAD_REGISTER_EVENTFD,
        OFFLOAD_UNREGISTER_EVENTFD, OFFLOAD_BITMAP_MAX_WORDS,
    );
    rust_consts!(m,
        OFFLOAD_SQ_WORKER_GONE, OFFLOAD_MAX_WORKER_IDLE_MS, OFFLOAD_DEFAULT_WORKER_IDLE_MS,
        OFFLOAD_FEAT_GETEVENTS, OFFLOAD_FEAT_SQE_ASYNC,
    );
    m
}

#[test]
fn rust_mirrors_match_the_uapi_header() {
    let Some(text) = header() else {
        assert!(
            std::env::var_os("SYSCALL_OFFLOAD_REQUIRE_HEADER").is_none(),
            "SYSCALL_OFFLOAD_REQUIRE_HEADER is set but there is no patches/ and no OFFLOAD_UAPI_HEADER"
        );
        // Not captured by the harness, so that the skip shows.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: rust_mirrors_match_the_uapi_header: no patches/ series and no OFFLOAD_UAPI_HEADER: layout not checked"
        );
        return;
    };
    let decls = parse(&text);
    assert!(decls.fields.len() >= 28 && decls.consts.len() >= 20, "header parse found too little");
    let c = c_layout(&text, &decls);
    let rust = rust_layout();
    // Both ways: every field and constant of the header is mirrored, and
    // every mirror is in the header, with the same size, offset or value.
    let mut diffs = Vec::new();
    for k in c.keys().chain(rust.keys()).collect::<std::collections::BTreeSet<_>>() {
        if c.get(k) != rust.get(k) {
            diffs.push(format!("{k}: C {:?}, Rust {:?}", c.get(k), rust.get(k)));
        }
    }
    assert!(diffs.is_empty(), "Rust mirrors differ from the header:\n{}", diffs.join("\n"));
}

#[test]
fn syscall_numbers_are_the_series_numbers() {
    #[cfg(target_arch = "x86_64")]
    assert_eq!((nr::OFFLOAD_SETUP, nr::OFFLOAD_ENTER, nr::OFFLOAD_REGISTER), (Some(463), Some(464), Some(465)));
}
