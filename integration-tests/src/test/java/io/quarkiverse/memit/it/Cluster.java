package io.quarkiverse.memit.it;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The names one cluster of replicas shares (topics, group, editor role) and the options of each replica. */
record Cluster(String run, String token) {

    /** The toy GPT-J, from the integration-tests module or from the repository root. */
    static final Path TOY = (Files.isDirectory(Path.of("../extension")) ? Path.of("../extension") : Path.of("extension"))
            .resolve("src/test/resources/toy-world/gptj").toAbsolutePath().normalize();

    String updatesTopic() {
        return "updates-" + run;
    }

    String outcomesTopic() {
        return updatesTopic() + "-applied";
    }

    String deltaTopic() {
        return "deltas-" + run;
    }

    /** The packaged application's options for replica {@code name} on the toy model, with replication on. */
    List<String> replica(String name, Path journal, String bootstrap, Path statsCache, String... more) {
        List<String> o = new ArrayList<>(List.of("quarkus.memit.model.path=" + TOY,
                "quarkus.memit.journal.dir=" + journal.toAbsolutePath(),
                "kafka.bootstrap.servers=" + bootstrap,
                "mp.messaging.incoming.memit-knowledge-updates.topic=" + updatesTopic(),
                "mp.messaging.incoming.memit-knowledge-updates.group.id=memit-" + run,
                // a killed editor leaves the group within seconds
                "mp.messaging.incoming.memit-knowledge-updates.session.timeout.ms=6000",
                "mp.messaging.incoming.memit-knowledge-updates.heartbeat.interval.ms=1000",
                "mp.messaging.outgoing.memit-knowledge-updates-applied.topic=" + outcomesTopic(),
                "mp.messaging.outgoing.memit-knowledge-updates-dlq.topic=" + updatesTopic() + "-dlq",
                "quarkus.memit.edit.stats.cache-dir=" + statsCache.toAbsolutePath(),
                "quarkus.memit.management.token=" + token,
                "quarkus.memit.replication.enabled=true",
                "quarkus.memit.replication.topic=" + deltaTopic(),
                "quarkus.memit.replication.editor-id=editor-" + run,
                "quarkus.memit.replication.replica-name=" + name));
        o.addAll(List.of(more));
        return o;
    }
}
