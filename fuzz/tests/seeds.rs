//! Every target accepts at least one of its seeds and none panics on them
//! (the check `fuzz/run` makes before fuzzing, runnable without libFuzzer).

#[test]
fn every_target_accepts_one_of_its_seeds() {
    let seeds = mesh_fuzz::seeds::all();
    assert_eq!(seeds.len(), mesh_fuzz::TARGETS.len());
    for (name, run) in mesh_fuzz::TARGETS {
        let (_, mine) = seeds.iter().find(|(n, _)| n == name).expect("seeds");
        let accepted = mine.iter().filter(|s| run(s)).count();
        assert!(
            accepted > 0,
            "{name}: none of {} seeds accepted",
            mine.len()
        );
    }
}
