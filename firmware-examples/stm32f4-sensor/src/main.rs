//! The twig sensor app on a NUCLEO-F429ZI (STM32F429ZI, Cortex-M4F, on-board Ethernet PHY
//! LAN8742A): DHCP over embassy-net, readings of the chip's temperature sensor published to a
//! twig gateway with twig-core's client, commands on `cmd.<device>`, a backlog while the gateway
//! is unreachable. See README.md for flashing and configuration.
#![no_std]
#![no_main]

use embassy_executor::Spawner;
use embassy_net::StackResources;
use embassy_stm32::adc::{Adc, SampleTime, Temperature};
use embassy_stm32::eth::{Ethernet, GenericPhy, PacketQueue, Sma};
use embassy_stm32::flash::Flash;
use embassy_stm32::peripherals::{ADC1, ETH, ETH_SMA};
use embassy_stm32::rng::Rng;
use embassy_stm32::time::Hertz;
use embassy_stm32::{Config, bind_interrupts, eth, peripherals, rng};
use sensor_app::{AppConfig, FlashBacklog, Sensor};
use static_cell::StaticCell;
use twig_core::log::Direct;
use {defmt_rtt as _, panic_probe as _};

bind_interrupts!(struct Irqs {
    ETH => eth::InterruptHandler;
    HASH_RNG => rng::InterruptHandler<peripherals::RNG>;
});

/// Set at build time: `TWIG_GATEWAY=192.168.1.50:4222 DEVICE=lab-f4 cargo build ...`.
const GATEWAY: &str = match option_env!("TWIG_GATEWAY") {
    Some(g) => g,
    None => "192.168.1.10:4222",
};
const DEVICE: &str = match option_env!("DEVICE") {
    Some(d) => d,
    None => "nucleo-f429",
};
/// This device's user nkey seed, set at build time (`TWIG_NKEY_SEED=SU...`), so each device
/// logs in as itself; unset: no authentication.
const NKEY_SEED: Option<&str> = option_env!("TWIG_NKEY_SEED");

/// The flash log's place inside bank 2's region 3 (seven 128 KiB sectors): its last two.
const LOG_START: u32 = 5 * 128 * 1024;
const LOG_END: u32 = 7 * 128 * 1024;

type Device = Ethernet<'static, ETH, GenericPhy<Sma<'static, ETH_SMA>>>;

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, Device>) -> ! {
    runner.run().await
}

/// The STM32F4's internal temperature sensor on ADC1 (datasheet: 0.76 V at 25 °C, 2.5 mV/°C).
struct ChipTemperature {
    adc: Adc<'static, ADC1>,
    channel: Temperature,
}

impl Sensor for ChipTemperature {
    fn read_centi_celsius(&mut self) -> i32 {
        // The sensor needs >= 10 us of sampling: the longest sample time.
        let raw = i32::from(
            self.adc
                .blocking_read(&mut self.channel, SampleTime::CYCLES480),
        );
        // 12-bit reading of a 3.3 V reference, in millivolts.
        let mv = raw * 3300 / 4095;
        2500 + (mv - 760) * 40
    }
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let mut config = Config::default();
    {
        use embassy_stm32::rcc::*;
        // 8 MHz from the ST-LINK's MCO, PLL to 180 MHz (Ethernet needs HCLK >= 25 MHz).
        config.rcc.hse = Some(Hse {
            freq: Hertz(8_000_000),
            mode: HseMode::Bypass,
        });
        config.rcc.pll_src = PllSource::HSE;
        config.rcc.pll = Some(Pll {
            prediv: PllPreDiv::DIV4,
            mul: PllMul::MUL180,
            divp: Some(PllPDiv::DIV2),
            divq: None,
            divr: None,
        });
        config.rcc.ahb_pre = AHBPrescaler::DIV1;
        config.rcc.apb1_pre = APBPrescaler::DIV4;
        config.rcc.apb2_pre = APBPrescaler::DIV2;
        config.rcc.sys = Sysclk::PLL1_P;
    }
    let p = embassy_stm32::init(config);
    defmt::info!("twig sensor {} -> gateway {}", DEVICE, GATEWAY);

    let mut rng = Rng::new(p.RNG, Irqs);
    let mut seed = [0; 8];
    rng.fill_bytes(&mut seed);
    let seed = u64::from_le_bytes(seed);
    // A locally administered MAC derived from the seed's first bytes.
    let mac = [
        0x02,
        0x00,
        seed as u8,
        (seed >> 8) as u8,
        (seed >> 16) as u8,
        (seed >> 24) as u8,
    ];

    static PACKETS: StaticCell<PacketQueue<4, 4>> = StaticCell::new();
    // NUCLEO-F429ZI RMII pins: REF_CLK PA1, CRS_DV PA7, RXD0 PC4, RXD1 PC5, TXD0 PG13,
    // TXD1 PB13, TX_EN PG11; the PHY's management bus MDIO PA2, MDC PC1.
    let device = Ethernet::new(
        PACKETS.init(PacketQueue::new()),
        p.ETH,
        Irqs,
        p.PA1,
        p.PA7,
        p.PC4,
        p.PC5,
        p.PG13,
        p.PB13,
        p.PG11,
        mac,
        p.ETH_SMA,
        p.PA2,
        p.PC1,
    );
    static RESOURCES: StaticCell<StackResources<2>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        device,
        embassy_net::Config::dhcpv4(Default::default()),
        RESOURCES.init(StackResources::new()),
        seed,
    );
    spawner.spawn(net_task(runner).expect("spawn the network task"));

    let gateway = sensor_app::parse_endpoint(GATEWAY).expect("TWIG_GATEWAY is a.b.c.d[:port]");
    let app = AppConfig {
        gateway,
        device: DEVICE,
        credentials: None,
        nkey_seed: NKEY_SEED,
        period_ms: 5_000,
    };
    let adc = Adc::new(p.ADC1);
    let channel = adc.enable_temperature();
    let mut sensor = ChipTemperature { adc, channel };
    // Readings wait on flash while the gateway is unreachable: the last two 128 KiB sectors
    // of bank 2 (0x081C0000..0x08200000), far from the firmware at the start of bank 1.
    let region = Flash::new_blocking(p.FLASH)
        .into_blocking_regions()
        .bank2_region3;
    let mut backlog =
        FlashBacklog::open(Direct(region), LOG_START, LOG_END).expect("open the flash log");
    sensor_app::run(stack, &app, &mut sensor, &mut backlog).await
}
