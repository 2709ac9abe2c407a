//! Two work-seed builds to one OUTPUT at the same time: OUTPUT ends as one complete seed,
//! byte for byte the one its rootfs gives alone, never a mix, never missing.

use std::fs;
use std::process::Stdio;

use testkit::{code, TempDir};

use crate::common;
use common::{rootfs_from, temp_files_in, work_seed, work_seed_command};

#[test]
fn two_builds_to_one_output_leave_one_whole_seed() {
    let t = TempDir::new();
    // Two different rootfs images, and the seed each gives when built alone.
    let mut rootfs = Vec::new();
    let mut alone = Vec::new();
    for (i, size) in [(0, 1usize << 20), (1, 3 << 20)] {
        let tree = t.join(format!("tree{i}"));
        fs::create_dir_all(tree.join("root/dir")).unwrap();
        let data: Vec<u8> = (0..size).map(|n| (n * 31 + i) as u8).collect();
        fs::write(tree.join("root/dir/blob"), data).unwrap();
        let image = rootfs_from(&t, &tree, "32M");
        let named = t.join(format!("rootfs{i}.ext4"));
        fs::rename(&image, &named).unwrap();
        let seed = t.join(format!("alone{i}.seed"));
        let out = work_seed(&[&named, &seed]);
        assert_eq!(code(&out), 0, "{}", testkit::stderr(&out));
        alone.push(fs::read(&seed).unwrap());
        rootfs.push(named);
    }
    assert!(alone[0] != alone[1]);
    let output = t.join("shared.seed");
    for round in 0..3 {
        let runs: Vec<_> = rootfs
            .iter()
            .map(|r| {
                testkit::spawn(
                    work_seed_command()
                        .arg(r)
                        .arg(&output)
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped()),
                )
            })
            .collect();
        for run in runs {
            let out = run.wait_with_output().unwrap();
            assert_eq!(code(&out), 0, "{}", testkit::stderr(&out));
        }
        let got = fs::read(&output).unwrap();
        assert!(
            got == alone[0] || got == alone[1],
            "round {round}: OUTPUT is neither seed"
        );
        testkit::e2fsck_clean(&output).unwrap();
        assert!(temp_files_in(t.path()).is_empty(), "round {round}");
    }
}
