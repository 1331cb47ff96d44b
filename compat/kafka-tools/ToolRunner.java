// The shared JVM of the kafka-tools suite (compat/kafka-tools/driver.py): runs Kafka's command-line
// tools one after the other in one JVM, so that each command does not pay a JVM start-up.
//
// Requests, one per line on stdin, fields separated by tabs:
//   RUN <main class> <arg>...            calls CLASS.main(args) with System.out/err captured and
//                                        Kafka's Exit procedure replaced (exit status kept)
//   PRODUCE <bootstrap> <topic> <partition> <count> <timestamp ms> <value prefix>
//                                        writes `count` records to one partition (acks=all) and
//                                        prints "<first offset> <last offset>"
// One answer per request on stdout: "RESULT <status> <base64 stdout> <base64 stderr>".
// Written for this suite (not taken from Kafka's sources).

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.Exit;

public class ToolRunner {
    static final class ExitCalled extends RuntimeException {
        final int status;

        ExitCalled(int status) {
            super("exit " + status, null, false, false);
            this.status = status;
        }
    }

    // The first exit status a request asked for: tools call Exit.exit from a finally block and
    // again from main (TopicCommand), and the exception of the first call is caught on the way.
    static Integer firstExit;

    static void exit(int status) {
        if (firstExit == null) firstExit = status;
        throw new ExitCalled(status);
    }

    public static void main(String[] argv) throws Exception {
        PrintStream realOut = System.out;
        PrintStream realErr = System.err;
        Exit.setExitProcedure((status, message) -> exit(status));
        Exit.setHaltProcedure((status, message) -> exit(status));
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        realOut.println("READY");
        realOut.flush();
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isEmpty()) continue;
            List<String> fields = new ArrayList<>(Arrays.asList(line.split("\t", -1)));
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            PrintStream capOut = new PrintStream(out, true, StandardCharsets.UTF_8);
            PrintStream capErr = new PrintStream(err, true, StandardCharsets.UTF_8);
            int status = 0;
            firstExit = null;
            System.setOut(capOut);
            System.setErr(capErr);
            try {
                String cmd = fields.remove(0);
                if (cmd.equals("RUN")) {
                    status = runMain(fields.remove(0), fields.toArray(new String[0]));
                } else if (cmd.equals("PRODUCE")) {
                    produce(fields, capOut);
                } else {
                    capErr.println("unknown request " + cmd);
                    status = 98;
                }
            } catch (Throwable t) {
                t.printStackTrace(capErr);
                status = 99;
            } finally {
                capOut.flush();
                capErr.flush();
                System.setOut(realOut);
                System.setErr(realErr);
            }
            if (firstExit != null) status = firstExit;
            Base64.Encoder b64 = Base64.getEncoder();
            realOut.println("RESULT " + status + " " + b64.encodeToString(out.toByteArray()) + " "
                    + b64.encodeToString(err.toByteArray()));
            realOut.flush();
        }
    }

    static int runMain(String className, String[] args) throws Throwable {
        Method main = Class.forName(className).getMethod("main", String[].class);
        try {
            main.invoke(null, (Object) args);
            return 0;
        } catch (InvocationTargetException e) {
            Throwable cause = e.getCause();
            if (cause instanceof ExitCalled) return ((ExitCalled) cause).status;
            throw cause;
        }
    }

    static void produce(List<String> f, PrintStream out) throws Exception {
        String bootstrap = f.get(0);
        String topic = f.get(1);
        int partition = Integer.parseInt(f.get(2));
        int count = Integer.parseInt(f.get(3));
        long timestamp = Long.parseLong(f.get(4));
        String prefix = f.get(5);
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        try (KafkaProducer<String, String> producer =
                     new KafkaProducer<>(props, new StringSerializer(), new StringSerializer())) {
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                sent.add(producer.send(new ProducerRecord<>(topic, partition, timestamp, null, prefix + i)));
            }
            long first = -1, last = -1;
            for (Future<RecordMetadata> s : sent) {
                RecordMetadata m = s.get();
                if (first < 0) first = m.offset();
                last = m.offset();
            }
            out.println(first + " " + last);
        }
    }
}
