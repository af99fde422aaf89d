// Runs in the java images through their entrypoint (`java -jar /probe.jar [fonts]`) and
// prints key=value lines the test checks.
import java.awt.GraphicsEnvironment;
import java.awt.font.FontRenderContext;
import java.awt.font.TextLayout;
import java.nio.charset.Charset;
import java.security.KeyStore;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509TrustManager;

public class Probe {
    public static void main(String[] args) throws Exception {
        if (args.length == 1 && args[0].equals("fonts")) {
            fonts();
            return;
        }
        System.out.println("java.version=" + System.getProperty("java.version"));
        System.out.println("java.home=" + System.getProperty("java.home"));
        System.out.println("JAVA_VERSION=" + System.getenv("JAVA_VERSION"));
        System.out.println("defaultCharset=" + Charset.defaultCharset());
        // JDK 18+ defaults file.encoding to UTF-8 whatever the locale; these two still
        // follow the C library's locale (LANG=C.UTF-8 and /usr/lib/locale/C.utf8).
        System.out.println("native.encoding=" + System.getProperty("native.encoding"));
        System.out.println("sun.jnu.encoding=" + System.getProperty("sun.jnu.encoding"));
        TrustManagerFactory tmf =
                TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init((KeyStore) null);
        int issuers = -1;
        for (TrustManager tm : tmf.getTrustManagers()) {
            if (tm instanceof X509TrustManager x) {
                issuers = x.getAcceptedIssuers().length;
            }
        }
        System.out.println("acceptedIssuers=" + issuers);
    }

    // Headless text layout, as report and spreadsheet libraries do (Apache POI's
    // autoSizeColumn): loads libfontmanager (FreeType, HarfBuzz) and reads the fonts
    // through fontconfig.
    static void fonts() {
        FontRenderContext frc = new FontRenderContext(null, true, true);
        TextLayout layout = new TextLayout("distroless", new java.awt.Font("SansSerif", 0, 12), frc);
        System.out.println("headless=" + GraphicsEnvironment.isHeadless());
        System.out.println("advance=" + layout.getAdvance());
        System.out.println("fonts=" + GraphicsEnvironment.getLocalGraphicsEnvironment().getAllFonts().length);
    }
}
