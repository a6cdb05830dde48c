//! Two agents delegating a task: the delegator's gate checks the delegatee's
//! trust, the delegatee co-signs the `delegate` record and runs the task,
//! the outcome comes back as a co-signed `result` record and becomes trust
//! evidence. An agent that keeps failing loses trust until the gate refuses.
//!
//! Run: `cargo run -p mesh-node --example delegate` (fixture keys, fixed
//! clock, no files needed).

use mesh_iatp::Score;
use mesh_iatp::testing::{FIXTURE_NOW, Federation};
use mesh_node::node::{DelegateOptions, FixedClock, Node, NodeError, Task, TaskOutcome};
use serde_bytes::ByteBuf;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let fed = Federation::new();
    let data = tempfile::tempdir()?;
    let start = |name: &str, fails: bool| {
        let agent = fed.agent(&fed.globex, name, &["search"]);
        let dir = data.path().join(name);
        let bundle = fed.bundle.clone();
        async move {
            Node::builder()
                .agent(agent)
                .bundle(bundle)
                .data_dir(dir)
                .clock(FixedClock(FIXTURE_NOW))
                .listen("/ip4/127.0.0.1/tcp/0".parse()?)
                .task_handler(move |_: &mesh_iatp::Did, task: &Task| TaskOutcome {
                    success: !fails,
                    output: ByteBuf::from(
                        format!("searched {}", String::from_utf8_lossy(&task.input)).into_bytes(),
                    ),
                    stopped: None,
                })
                .build()
                .await
                .map_err(anyhow::Error::from)
        }
    };
    let boss = start("boss", false).await?;
    let helper = start("helper", false).await?;
    let slacker = start("slacker", true).await?;
    let helper_did = boss.connect(helper.listen_addrs().await?.remove(0)).await?;
    let slacker_did = boss
        .connect(slacker.listen_addrs().await?.remove(0))
        .await?;

    let task = |q: &str| Task {
        resource: "search".into(),
        action: "query".into(),
        input: ByteBuf::from(q.as_bytes().to_vec()),
    };
    let options = DelegateOptions {
        min_trust: Score::saturating(380),
        ..DelegateOptions::default()
    };

    let done = boss
        .delegate_task(&helper_did, task("rust p2p"), options.clone())
        .await?;
    println!(
        "helper: {} (delegate record {}, result record {}); trust now {}",
        String::from_utf8_lossy(&done.outcome.output),
        done.delegate.index,
        done.result.index,
        boss.trust_of(&helper_did).await?
    );

    for round in 1.. {
        match boss
            .delegate_task(&slacker_did, task("anything"), options.clone())
            .await
        {
            Ok(d) => println!(
                "slacker, round {round}: success={} → trust {}",
                d.outcome.success,
                boss.trust_of(&slacker_did).await?
            ),
            Err(NodeError::Denied(denial)) => {
                println!("slacker, round {round}: the gate refuses: {denial}");
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    for node in [boss, helper, slacker] {
        node.shutdown().await?;
    }
    Ok(())
}
