//! The twig sensor app on an ESP32-C3 (RISC-V, Wi-Fi): joins a Wi-Fi network with esp-radio,
//! gets an address by DHCP over embassy-net, publishes the chip's temperature sensor to a twig
//! gateway with twig-core's client, answers commands on `cmd.<device>`, and keeps a backlog
//! while the gateway is unreachable. See README.md for flashing and configuration.
#![no_std]
#![no_main]

use embassy_executor::Spawner;
use embassy_net::StackResources;
use esp_hal::clock::CpuClock;
use esp_hal::rng::Rng;
use esp_hal::timer::timg::TimerGroup;
use esp_hal::tsens::{self, TemperatureSensor};
use esp_println::println;
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{AuthenticationMethodConfig, Config, Interface, WifiController};
use esp_storage::FlashStorage;
use sensor_app::{AppConfig, FlashBacklog, Sensor};
use static_cell::StaticCell;
use twig_core::log::Direct;
use {esp_backtrace as _, esp_println as _};

esp_bootloader_esp_idf::esp_app_desc!();

/// Set at build time: `WIFI_SSID=… WIFI_PASSWORD=… TWIG_GATEWAY=192.168.1.50:4222 cargo build …`.
const WIFI_SSID: &str = match option_env!("WIFI_SSID") {
    Some(s) => s,
    None => "twig-lab",
};
const WIFI_PASSWORD: &str = match option_env!("WIFI_PASSWORD") {
    Some(p) => p,
    None => "",
};
const GATEWAY: &str = match option_env!("TWIG_GATEWAY") {
    Some(g) => g,
    None => "192.168.1.10:4222",
};
const DEVICE: &str = match option_env!("DEVICE") {
    Some(d) => d,
    None => "esp32c3",
};
/// This device's user nkey seed, set at build time (`TWIG_NKEY_SEED=SU...`), so each device
/// logs in as itself; unset: no authentication.
const NKEY_SEED: Option<&str> = option_env!("TWIG_NKEY_SEED");

/// The flash log's region: the last 256 KiB of a 4 MiB flash, outside the default partition
/// table (nvs 0x9000, phy_init 0xF000, factory app 0x10000..0x110000). Move it when your
/// partition table uses that space.
const LOG_START: u32 = 0x3C_0000;
const LOG_END: u32 = 0x40_0000;

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, Interface>) -> ! {
    runner.run().await
}

/// Keeps the station associated: (re)connects whenever the link drops.
#[embassy_executor::task]
async fn wifi_task(mut controller: WifiController<'static>) -> ! {
    loop {
        match controller.connect_async().await {
            Ok(_) => {
                println!("wifi: connected to {}", WIFI_SSID);
                let _ = controller.wait_for_disconnect_async().await;
                println!("wifi: disconnected");
            }
            Err(e) => {
                println!("wifi: connect failed: {:?}", e);
                embassy_time::Timer::after_secs(5).await;
            }
        }
    }
}

/// The ESP32-C3's internal temperature sensor.
struct ChipTemperature(TemperatureSensor<'static>);

impl Sensor for ChipTemperature {
    fn read_centi_celsius(&mut self) -> i32 {
        (self.0.get_temperature().to_celsius() * 100.0) as i32
    }
}

#[esp_rtos::main]
async fn main(spawner: Spawner) {
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));
    // The Wi-Fi driver allocates; twig-core and the sensor app do not.
    esp_alloc::heap_allocator!(size: 72 * 1024);
    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);
    println!(
        "twig sensor {} -> gateway {} over Wi-Fi {}",
        DEVICE, GATEWAY, WIFI_SSID
    );

    let auth = if WIFI_PASSWORD.is_empty() {
        AuthenticationMethodConfig::Open
    } else {
        AuthenticationMethodConfig::Wpa2Personal(
            WIFI_PASSWORD
                .try_into()
                .expect("WIFI_PASSWORD fits 64 bytes"),
        )
    };
    let station = StationConfig::default()
        .with_ssid(WIFI_SSID.try_into().expect("WIFI_SSID fits 32 bytes"))
        .with_authentication(auth);
    let mut controller =
        WifiController::new(peripherals.WIFI, Default::default()).expect("start the Wi-Fi driver");
    controller
        .set_config(&Config::Station(station))
        .expect("Wi-Fi station configuration");

    let rng = Rng::new();
    let seed = u64::from(rng.random()) << 32 | u64::from(rng.random());
    static RESOURCES: StaticCell<StackResources<3>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        Interface::station(),
        embassy_net::Config::dhcpv4(Default::default()),
        RESOURCES.init(StackResources::new()),
        seed,
    );
    spawner.spawn(wifi_task(controller).expect("spawn the Wi-Fi task"));
    spawner.spawn(net_task(runner).expect("spawn the network task"));

    let gateway = sensor_app::parse_endpoint(GATEWAY).expect("TWIG_GATEWAY is a.b.c.d[:port]");
    let app = AppConfig {
        gateway,
        device: DEVICE,
        credentials: None,
        nkey_seed: NKEY_SEED,
        period_ms: 5_000,
    };
    let tsens = TemperatureSensor::new(peripherals.TSENS, tsens::Config::default())
        .expect("temperature sensor");
    let mut sensor = ChipTemperature(tsens);
    // Readings wait on flash while the gateway is unreachable (see LOG_START).
    let mut backlog = FlashBacklog::open(
        Direct(FlashStorage::new(peripherals.FLASH)),
        LOG_START,
        LOG_END,
    )
    .expect("open the flash log");
    sensor_app::run(stack, &app, &mut sensor, &mut backlog).await
}
