import NIOSSL

/// A certificate authority made for the tests alone, and a server certificate it signed for
/// `localhost` and 127.0.0.1 (valid until 2125), so the TLS client's verification can be tested
/// both ways on loopback: trusted when the test passes this CA as a root, refused with the
/// system's roots. The private key protects nothing but these tests.
public enum TestCertificates {
    public static let authorityPEM = """
        -----BEGIN CERTIFICATE-----
        MIIBqTCCAU+gAwIBAgIUHsjcrC8/6mS//Ww2WA26LDcQGaMwCgYIKoZIzj0EAwIw
        ITEfMB0GA1UEAwwWb3BlbmFsZ28tYWdlbnQgdGVzdCBDQTAgFw0yNjExMjcwNTI0
        NTRaGA8yMTI2MTEwMzA1MjQ1NFowITEfMB0GA1UEAwwWb3BlbmFsZ28tYWdlbnQg
        dGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABItEfruI4gIG/RH4xikN
        R+MYoFkFMRr/jnUcJS+loylr2tDUILSDHpuqYDxDzn4J1ot1/AxfQly6PGWta871
        mD2jYzBhMB0GA1UdDgQWBBRBpvilN1LIJVVv4Y1Sx3vgwdyEGzAfBgNVHSMEGDAW
        gBRBpvilN1LIJVVv4Y1Sx3vgwdyEGzAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB
        /wQEAwIBBjAKBggqhkjOPQQDAgNIADBFAiEAiS9FqBfrD3fMTsF/N3u5cqykXGZZ
        Dhl51O6+/qSD7DoCICmqk2q2hp0WSS7Gj0TvXeUr/JkgJZXfTQ+s61hthwHz
        -----END CERTIFICATE-----
        """

    public static let serverPEM = """
        -----BEGIN CERTIFICATE-----
        MIIBxzCCAWygAwIBAgIUf6L0GZFT0rwPKe76OrB5tXRA5rgwCgYIKoZIzj0EAwIw
        ITEfMB0GA1UEAwwWb3BlbmFsZ28tYWdlbnQgdGVzdCBDQTAgFw0yNjExMjcwNTI0
        NTRaGA8yMTI2MTEwMzA1MjQ1NFowFDESMBAGA1UEAwwJbG9jYWxob3N0MFkwEwYH
        KoZIzj0CAQYIKoZIzj0DAQcDQgAEdTlMj0t9bz8NlnsP63Oy096fq20lUhjlm/bb
        ZL62Bvy+oWBD2x9gMh3OHi8dGmivqJCDN7dyacT1PXgcDfGv0qOBjDCBiTAaBgNV
        HREEEzARgglsb2NhbGhvc3SHBH8AAAEwCQYDVR0TBAIwADALBgNVHQ8EBAMCB4Aw
        EwYDVR0lBAwwCgYIKwYBBQUHAwEwHQYDVR0OBBYEFCMiKdbGugzcR7wRBCNDovQC
        bJx4MB8GA1UdIwQYMBaAFEGm+KU3UsglVW/hjVLHe+DB3IQbMAoGCCqGSM49BAMC
        A0kAMEYCIQC2jvkVY+pVGoPEw6Vhsn7Figwy6sbKHwuomriCKW0yuwIhAP4/E3kV
        Z7Lm5pE5MOWPYeoSjH0jWwlGXpemANh0Viz6
        -----END CERTIFICATE-----
        """

    public static let serverKeyPEM = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgl7DsqNw8U2tB3r70
        sOKR5tjHGxujyp8bgdyCn967IXuhRANCAAR1OUyPS31vPw2Wew/rc7LT3p+rbSVS
        GOWb9ttkvrYG/L6hYEPbH2AyHc4eLx0aaK+okIM3t3JpxPU9eBwN8a/S
        -----END PRIVATE KEY-----
        """

    /// The server side: the `localhost` certificate and its key.
    public static func serverConfiguration() throws -> TLSConfiguration {
        TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: Array(Self.serverPEM.utf8), format: .pem))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(Self.serverKeyPEM.utf8), format: .pem))
        )
    }

    /// A client that trusts only the test authority, with full verification.
    public static func trustingClientConfiguration() throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(Self.authorityPEM.utf8), format: .pem)])
        return configuration
    }
}
