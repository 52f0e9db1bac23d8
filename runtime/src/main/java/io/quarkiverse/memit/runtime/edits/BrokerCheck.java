package io.quarkiverse.memit.runtime.edits;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.jboss.logging.Logger;

/**
 * Says once, in the application's words, when no Kafka broker answers at startup: the address tried, and that
 * knowledge updates wait until one does (the Kafka client itself logs a warning per reconnection attempt, which does
 * not say what it means for edits). Runs in the background; never delays startup.
 */
@ApplicationScoped
public class BrokerCheck {

    private static final Logger LOG = Logger.getLogger(BrokerCheck.class);
    private static final Duration PATIENCE = Duration.ofSeconds(15);

    @Inject
    KafkaClients clients;

    private volatile Thread thread;
    private volatile boolean stopped;

    /** Starts the check on a thread of its own. */
    synchronized void start() {
        if (stopped || thread != null) {
            return;
        }
        thread = new Thread(this::check, "memit-broker-check");
        thread.setDaemon(true);
        thread.start();
    }

    /** The application stops: the check ends without a word. */
    @PreDestroy
    synchronized void stop() {
        stopped = true;
        if (thread != null) {
            thread.interrupt();
        }
    }

    private void check() {
        String bootstrap = clients.bootstrapServers();
        Map<String, Object> properties = clients.properties(AdminClientConfig.configNames(), "memit-broker-check");
        properties.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) PATIENCE.toMillis());
        properties.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, (int) PATIENCE.toMillis());
        try (Admin admin = Admin.create(properties)) {
            admin.describeCluster(new DescribeClusterOptions().timeoutMs((int) PATIENCE.toMillis())).clusterId()
                    .get(PATIENCE.toMillis() + 1000, TimeUnit.MILLISECONDS);
            LOG.debugf("Kafka broker reachable at %s", bootstrap);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Exception e) {
            if (stopped) {
                return;
            }
            LOG.warnf("No Kafka broker answered at %s (kafka.bootstrap.servers) within %d s: knowledge updates wait in "
                    + "Kafka and are applied once it is reachable; completions are served meanwhile (%s)", bootstrap,
                    PATIENCE.toSeconds(), e.getCause() != null ? e.getCause().toString() : e.toString());
        }
    }
}
