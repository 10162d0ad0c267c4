/*
 * Owns: the Java compat suite's runner: every case (kafka-clients, kafka-streams, Kafka's tools) against the
 * broker at KB_BOOTSTRAP, one JVM per target, one "CASE" line per case and a RESULT summary for run.sh.
 * Must not: start or stop a broker (run.py does), loosen an expectation to hide a kbroker difference (list it
 * in KBROKER_DIFFERS instead), or leave a case unbounded in time.
 */
package kbcompat;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

public final class Main {
    interface Body {
        void run() throws Exception;
    }

    record Case(String name, Body body, long timeoutMs) {}

    /*
     * Cases whose expectation is Kafka's but that kbroker fails today: an expected failure on kbroker, so a
     * fix shows up as an unexpected pass (which fails the run until the entry goes).
     */
    static final Map<String, String> KBROKER_DIFFERS = new LinkedHashMap<>();

    static final PrintStream OUT = System.out;
    static final List<Case> CASES = new ArrayList<>();

    static void add(String name, long timeoutMs, Body body) {
        CASES.add(new Case(name, body, timeoutMs));
    }

    public static void main(String[] args) throws Exception {
        String boot = System.getenv("KB_BOOTSTRAP");
        if (boot == null || boot.isEmpty()) {
            OUT.println("KB_BOOTSTRAP is not set");
            System.exit(2);
        }
        String target = System.getenv().getOrDefault("KB_TARGET", "kbroker");
        boolean isKbroker = target.isEmpty() || target.equals("kbroker");
        Path tmp = Files.createTempDirectory("kb-java-compat-");
        Env env = new Env(boot, tmp, isKbroker);
        ClientCases.register(env);
        StreamsCases.register(env);
        ToolCases.register(env);
        SecurityCases.register(env);
        RegexCases.register(env);
        ShareCases.register(env);
        ShareAdminCases.register(env);
        ShareDurableCases.register(env);
        ShareHistoryCases.register(env);
        ShareKillCases.register(env);
        TxnCases.register(env);
        Txn2Cases.register(env);
        MigrationCases.register(env);
        EosCases.register(env);
        StreamsEosCases.register(env);

        String only = System.getenv().getOrDefault("KB_JAVA_ONLY", "");
        String skip = System.getenv().getOrDefault("KB_JAVA_SKIP", "");
        int passed = 0, failed = 0, skipped = 0;
        long t0 = System.nanoTime();
        for (Case c : CASES) {
            if (!matches(c.name(), only, true) || matches(c.name(), skip, false)) {
                continue;
            }
            long t = System.nanoTime();
            Throwable err = runBounded(c);
            long ms = (System.nanoTime() - t) / 1_000_000;
            String differs = isKbroker ? KBROKER_DIFFERS.get(c.name()) : null;
            if (err == null && differs == null) {
                passed++;
                OUT.printf("CASE PASS %s (%d ms)%n", c.name(), ms);
            } else if (err == null) {
                failed++;
                OUT.printf("CASE FAIL %s (%d ms): passes on kbroker but is listed as differing (%s): remove the"
                        + " KBROKER_DIFFERS entry%n", c.name(), ms, differs);
                OUT.printf("FAIL: %s (unexpected success)%n", c.name());
            } else if (differs != null) {
                skipped++;
                OUT.printf("CASE XFAIL %s (%d ms): %s; seen: %s%n", c.name(), ms, differs, describe(err));
                OUT.printf("XFAIL-REASON %s: %s%n", c.name(), differs);
            } else {
                failed++;
                OUT.printf("CASE FAIL %s (%d ms): %s%n", c.name(), ms, describe(err));
                err.printStackTrace(OUT);
                OUT.printf("FAIL: %s%n", c.name()); // the line lib/report.py lists failures by
            }
            OUT.flush();
        }
        OUT.printf("java suite: %d cases in %d s%n", passed + failed + skipped, (System.nanoTime() - t0) / 1_000_000_000L);
        OUT.printf("RESULT passed=%d failed=%d skipped=%d%n", passed, failed, skipped);
        OUT.printf("%d passed, %d failed%n", passed, failed);
        OUT.flush();
        Util.deleteTree(tmp);
        // Client threads of a case that timed out may still be alive: they must not keep the JVM up.
        System.exit(failed == 0 ? 0 : 1);
    }

    static boolean matches(String name, String list, boolean emptyMatches) {
        if (list.isEmpty()) {
            return emptyMatches;
        }
        for (String s : list.split(",")) {
            if (!s.isEmpty() && name.contains(s)) {
                return true;
            }
        }
        return false;
    }

    static Throwable runBounded(Case c) {
        CompletableFuture<Void> f = new CompletableFuture<>();
        Thread th = new Thread(() -> {
            try {
                c.body().run();
                f.complete(null);
            } catch (Throwable e) {
                f.completeExceptionally(e);
            }
        }, "case-" + c.name());
        th.setDaemon(true);
        th.start();
        try {
            f.get(c.timeoutMs(), TimeUnit.MILLISECONDS);
            return null;
        } catch (TimeoutException e) {
            th.interrupt();
            return new AssertionError("timed out after " + c.timeoutMs() + " ms");
        } catch (java.util.concurrent.ExecutionException e) {
            return e.getCause();
        } catch (InterruptedException e) {
            return e;
        } finally {
            Util.restoreStdio();
        }
    }

    static String describe(Throwable e) {
        StringBuilder sb = new StringBuilder();
        for (Throwable x = e; x != null; x = x.getCause() == x ? null : x.getCause()) {
            if (sb.length() > 0) {
                sb.append(" <- ");
            }
            sb.append(x.getClass().getSimpleName()).append(": ").append(x.getMessage());
        }
        return sb.toString().replace('\n', ' ');
    }

    /** What every case needs: the broker address, a temp dir, and a unique suffix for names. */
    record Env(String bootstrap, Path tmp, boolean isKbroker) {
        static final String RUN = Long.toString(System.currentTimeMillis() % 100_000_000L, 36);

        String name(String base) {
            return "java-" + base + "-" + RUN;
        }
    }

}
